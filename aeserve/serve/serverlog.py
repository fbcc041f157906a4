"""The Triton server's log: where it goes, and the error messages in it.

    path, owned, sink = open_log(None, workdir)    # workdir/tritonserver.log, appended
    server_errors(path.read_text())                # ["failed to load 'm': ...", ...]
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import IO

from ..errors import InputError


def open_log(log: str | os.PathLike[str] | None, workdir: Path) -> tuple[Path | None, IO | None, object]:
    """Where the server writes its log: (path to read tails from, file the caller owns, what Popen
    writes to). ``log`` None: ``workdir/tritonserver.log``; ``"-"``: inherit this process's
    stdout/stderr; else append to that path (InputError if it cannot be opened for writing)."""
    if log == "-":
        return None, None, None  # inherit the caller's stdout/stderr
    path = workdir / "tritonserver.log" if log is None else Path(log)
    try:
        f = open(path, "ab", buffering=0)  # noqa: SIM115 - closed in ServerHandle.stop
    except (OSError, TypeError, ValueError) as e:
        why = getattr(e, "strerror", None) or str(e)
        raise InputError(f"cannot write the server log to {str(log)!r}: {why}; expected a writable file path "
                         "(its directory must exist) or '-' for this terminal") from e
    return path, f, f


_ERROR_LINE = re.compile(r"^E\d{4} [\d:.]+ +\d+ [^\]]*\] (.*)$")
_BENIGN = ("CudaDriverHelper has not been initialized", "Failed to initialize CUDA", "GPU metrics")


def server_errors(log_text: str, limit: int = 6) -> list[str]:
    """The distinct error messages of a Triton log (``E...`` lines, ``error: ...``, a C++
    ``terminate called ...`` before an abort), last ``limit``."""
    out: list[str] = []
    for line in log_text.splitlines():
        m = _ERROR_LINE.match(line)
        msg = m.group(1).strip('"') if m else (line if line.startswith(("error:", "terminate called")) else None)
        if msg is None or any(b in msg for b in _BENIGN):
            continue
        msg = msg.split("\\n\\nAt:")[0].replace("\\n", " ").strip()
        if msg not in out:
            out.append(msg)
    return out[-limit:]
