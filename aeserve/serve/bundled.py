"""Locating and preparing the Triton binary bundled in the ``nvidia-pytriton`` wheel.

    b = find_bundled()                          # ServerError if the wheel is missing
    backends = b.prepare_backends("/tmp/work")   # backend dir with the Python backend + stub
    env = b.environment()                        # LD_LIBRARY_PATH / PATH for the binary

Recipe: the stub matching this interpreter
(``python_backend_stubs/3.X/triton_python_backend_stub``) goes next to
``backends/python/libtriton_python.so``; ``nvidia_pytriton.libs`` and the interpreter's
shared-libpython directory come first on ``LD_LIBRARY_PATH``; this interpreter's ``bin``
comes first on ``PATH`` (the stub's embedded Python finds its ``site-packages``, with
numpy and onnxruntime, through it), and ``PYTHONPATH`` carries the site-packages too.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import site
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from ..errors import ServerError


@dataclass(frozen=True)
class BundledTriton:
    """Paths inside an installed ``nvidia-pytriton`` wheel."""

    root: Path  # .../site-packages/pytriton/tritonserver

    @property
    def binary(self) -> Path:
        return self.root / "bin" / "tritonserver"

    @property
    def libs(self) -> Path:
        return self.root.parent.parent / "nvidia_pytriton.libs"

    @property
    def stub(self) -> Path:
        v = f"{sys.version_info.major}.{sys.version_info.minor}"
        return self.root / "python_backend_stubs" / v / "triton_python_backend_stub"

    def prepare_backends(self, workdir: str | os.PathLike[str]) -> Path:
        """Create ``workdir/backends/python`` (backend library, utils, stub); return ``workdir/backends``."""
        src = self.root / "backends" / "python"
        dst = Path(workdir) / "backends" / "python"
        dst.mkdir(parents=True)
        for f in ("libtriton_python.so", "triton_python_backend_utils.py"):
            shutil.copy2(src / f, dst / f)
        shutil.copy2(self.stub, dst / "triton_python_backend_stub")
        return dst.parent

    def environment(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """Environment for the binary and its Python-backend stubs."""
        env = dict(os.environ if base is None else base)
        libdir = sysconfig.get_config_var("LIBDIR") or ""
        ld = [str(self.libs), libdir, env.get("LD_LIBRARY_PATH", "")]
        env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in ld if p)
        env["PATH"] = os.pathsep.join(p for p in (str(Path(sys.executable).parent), env.get("PATH", "")) if p)
        py = [*site.getsitepackages(), env.get("PYTHONPATH", "")]
        env["PYTHONPATH"] = os.pathsep.join(p for p in py if p)
        return env


def find_bundled() -> BundledTriton:
    """The bundled Triton of the installed ``nvidia-pytriton`` wheel; ServerError if absent or incomplete."""
    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        raise ServerError("no tritonserver on PATH and the nvidia-pytriton wheel is not installed; "
                          "install the serve extra (pip install 'aeserve[serve]') or run the official Triton image")
    b = BundledTriton(Path(list(spec.submodule_search_locations)[0]) / "tritonserver")
    missing = [p for p in (b.binary, b.libs, b.stub, b.root / "backends" / "python" / "libtriton_python.so")
               if not p.exists()]
    if missing:
        raise ServerError(f"the nvidia-pytriton wheel at {b.root} is incomplete for Python "
                          f"{sys.version_info.major}.{sys.version_info.minor}: missing {', '.join(map(str, missing))}")
    return b
