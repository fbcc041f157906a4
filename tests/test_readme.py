"""README.md as a newcomer meets it: every code block runs as pasted, or says why it cannot here.

Blocks are found by their section (``## ...``) and position. The fast ones run in the
default suite (the Python API block under a stand-in for the ``cpu``-only install, the
client command lines in a scratch directory); the training block and the fresh-venv
install are slow; the serving calls run against the session's Triton server with its
ports substituted for 8000/8001. A new block fails :func:`test_every_block_is_accounted_for`
until a test runs it or ``NOT_RUN`` names the reason.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BIN = Path(sys.executable).parent
# packages the `cpu` install lacks; importing one of them fails under the stand-in
NOT_IN_CPU_INSTALL = ("torch", "onnx", "onnxscript", "mnist", "sklearn", "scipy", "matplotlib", "pytriton")

# (section, first line prefix) -> why no test runs it
NOT_RUN = {
    ("Quick start", "# 2. install everything"): "it runs this very test suite",
    ("Serving", "aeserve serve [--repo"): "a synopsis of the options, not a command",
    ("Serving", "curl -s -X POST -H \"aeserve-api-key"): "needs the key printed by a server in explicit mode",
    ("Serving", "docker build"): "no Docker engine on the development machines",
    ("Development", "aeserve/"): "a directory map, not code",
    ("Scaling out", "aeserve train --family ae --epochs 10 --out ae.pt --nproc-per-node"):
        "10 epochs x 2 processes; tests/test_distributed_ddp.py runs the same launch on a subset",
    ("Scaling out", "aeserve batch score compress"): "names files of the reader's; tests/test_cli_batch.py "
                                                     "and tests/test_distributed_batch_job.py run these calls",
    ("Scaling out", "from aeserve.distributed import ray_batch"): "needs a Triton service in a cluster; "
                                                                  "tests/test_distributed_ray_batch.py runs it locally",
    ("Scaling out", "kubectl apply"): "no Kubernetes cluster on the development machines",
}


def blocks() -> list[tuple[str, str, str]]:
    """(section, language, code) for every fenced block of README.md, in order."""
    found, section, lang, lines = [], "", None, []
    for line in README.read_text().splitlines():
        if lang is None and line.startswith("## "):
            section = line[3:].strip()
        elif line.startswith("```"):
            if lang is None:
                lang, lines = line[3:].strip(), []
            else:
                found.append((section, lang, "\n".join(lines) + "\n"))
                lang = None
        elif lang is not None:
            lines.append(line)
    return found


def block(section: str, prefix: str) -> str:
    matches = [code for s, _, code in blocks() if s == section and code.lstrip().startswith(prefix)]
    assert len(matches) == 1, f"README has {len(matches)} blocks in '{section}' starting with {prefix!r}"
    return matches[0]


RUN = {
    ("Python API", "import aeserve"),
    ("Command line", "source .venv/bin/activate                             # puts aeserve on PATH"),
    ("Command line", "source .venv/bin/activate\naeserve train"),
    ("Quick start", "# 1. install the client"),
    ("Serving", "curl -s localhost:8000/v2/models/mnist_vae_decoder/infer"),
    ("Serving", "import numpy as np, tritonclient"),
}


def test_every_block_is_accounted_for():
    unaccounted = []
    for section, _, code in blocks():
        keys = [k for k in (*RUN, *NOT_RUN) if k[0] == section and code.lstrip().startswith(k[1])]
        if not keys:
            unaccounted.append(f"{section}: {code.splitlines()[0]}")
    assert not unaccounted, ("README blocks no test runs; make tests/test_readme.py run them "
                             f"or add them to NOT_RUN with the reason: {unaccounted}")


def _cpu_only_env(tmp_path: Path) -> dict[str, str]:
    """Environment in which importing any package outside the `cpu` install fails."""
    site = tmp_path / "cpu_only"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(
        "import importlib.abc, sys\n"
        f"BLOCKED = {NOT_IN_CPU_INSTALL!r}\n"
        "class _Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in BLOCKED:\n"
        "            raise ModuleNotFoundError(f'No module named {name!r} (not in the cpu install)', name=name)\n"
        "sys.meta_path.insert(0, _Block())\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AESERVE_")}
    env.update(PYTHONPATH=str(site), PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}")
    return env


def _scratch(tmp_path: Path) -> Path:
    """A directory that looks like the clone to the commands: examples/ and model_repository/."""
    work = tmp_path / "clone"
    work.mkdir()
    (work / "examples").symlink_to(ROOT / "examples")
    (work / "model_repository").symlink_to(ROOT / "model_repository")
    (work / ".venv").symlink_to(Path(sys.prefix))  # the environment running these tests
    return work


def _bash(code: str, cwd: Path, env: dict[str, str], timeout: int) -> subprocess.CompletedProcess:
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", code], cwd=cwd, env=env, capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0, f"README block failed:\n{code}\n--- stderr:\n{result.stderr[-3000:]}"
    return result


def test_python_api_block_runs_as_pasted_with_the_cpu_install(tmp_path):
    code = block("Python API", "import aeserve")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_cpu_only_env(tmp_path),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    claimed = re.search(r"It prints `([^`]+)`", README.read_text())
    assert claimed, "README no longer says what the Python API block prints"
    assert result.stdout.strip() == claimed.group(1)


def test_client_command_lines_run_as_pasted_with_the_cpu_install(tmp_path):
    work = _scratch(tmp_path)
    _bash(block("Command line", "source .venv/bin/activate                             # puts"), work, _cpu_only_env(tmp_path), timeout=600)
    for name in ("grid.png", "classes.png", "shift.png", "strip.png", "clean.png", "digits.aez", "digits.png",
                 "scores.csv"):
        assert (work / name).stat().st_size > 0, name
    rows = (work / "scores.csv").read_text().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in rows if r.endswith(",1")] == list(range(24, 32))  # as the README says


@pytest.mark.slow
def test_training_command_lines_run_as_pasted(tmp_path):
    work = _scratch(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AESERVE_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    _bash(block("Command line", "source .venv/bin/activate\naeserve train"), work, env, timeout=1800)
    assert (work / "my_models" / "my_vae_encoder" / "1" / "model.onnx").is_file()
    assert (work / "mine.png").is_file() and (work / "latent.png").is_file()


@pytest.mark.slow
def test_quick_start_in_a_fresh_venv(tmp_path):
    clone = tmp_path / "aeserve"
    shutil.copytree(ROOT, clone, ignore=shutil.ignore_patterns(".venv", ".git", "__pycache__", "*.egg-info",
                                                               ".pytest_cache", "build"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AESERVE_", "VIRTUAL_ENV", "PYTHON"))}
    _bash(block("Quick start", "# 1. install the client"), clone, env, timeout=1800)
    assert (clone / "grid.png").is_file()


def _with_ports(code: str, server) -> str:
    http = server.url_http.split("://", 1)[1]
    grpc = server.url_grpc.split("://", 1)[1]
    return code.replace("localhost:8000", http).replace("localhost:8001", grpc)


@pytest.mark.triton
def test_serving_calls_run_against_a_server(triton_server, tmp_path):
    if shutil.which("curl"):
        out = _bash(_with_ports(block("Serving", "curl -s localhost:8000/v2/models/mnist_vae_decoder/infer"),
                                triton_server), tmp_path, dict(os.environ), timeout=120).stdout
        assert '"name":"x_hat"' in out and '"shape":[1,1,28,28]' in out and "aeserve.family" in out
    code = _with_ports(block("Serving", "import numpy as np, tritonclient"), triton_server)
    code += "assert x_hat.shape == (4, 1, 28, 28) and grid.shape == (64, 1, 28, 28)\n"
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
