"""Helpers for the serving tests.

- ``fake_tritonserver(tmp_path, monkeypatch)``: a stand-in for the official ``tritonserver``
  (native mode) that starts in a fraction of a second, first on PATH; returns the file where
  it records its argv. It answers ``/v2/health/ready`` (200, or 503 with ``ready=False``)
  and, with ``exit_after=s``, exits with code 3 after ``s`` seconds; with ``fail_restarts``
  every start after the first exits at once with code 1 (a server that cannot start again).
- ``copy_model_pair(repo, dest)``: one VAE (its encoder and decoder) copied out of a
  repository, for servers of a test's own that start quickly; returns (root, name).
- ``wait_for(cond, timeout)``: poll until ``cond()`` is true; its last value.
"""

from __future__ import annotations

import os
import shutil
import sys
import textwrap
import time
from pathlib import Path

FAKE_TRITON = textwrap.dedent("""\
    #!{python}
    # stand-in for the official tritonserver: records its argv, answers /v2/health/ready
    import http.server, json, os, sys, threading
    args = dict(a[2:].split("=", 1) for a in sys.argv[1:])
    if {fail_restarts} and os.path.exists({record!r}):
        sys.exit(1)
    json.dump(sys.argv[1:], open({record!r}, "w"))
    if {exit_after!r} is not None:
        threading.Timer({exit_after!r}, lambda: os._exit(3)).start()
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/v2/health/ready" and {ready} else 503)
            self.end_headers()
        def log_message(self, *a):
            pass
    http.server.HTTPServer((args["http-address"], int(args["http-port"])), H).serve_forever()
    """)


def fake_tritonserver(tmp_path: Path, monkeypatch, ready: bool = True, exit_after: float | None = None,
                      fail_restarts: bool = False) -> Path:
    """Install the fake first on PATH (via monkeypatch); return the path of its argv record."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    exe = bin_dir / "tritonserver"
    exe.write_text(FAKE_TRITON.format(python=sys.executable, record=str(tmp_path / "argv.json"), ready=ready,
                                      exit_after=exit_after, fail_restarts=fail_restarts))
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return tmp_path / "argv.json"


def copy_model_pair(repo: Path, dest: Path) -> tuple[Path, str]:
    """Copy ``mnist_vae`` (else the first VAE) of ``repo`` into ``dest``; return (dest, model name)."""
    from aeserve.repository import Repository

    r = Repository(repo)
    name = "mnist_vae" if "mnist_vae" in r.models() else next(n for n in r.models() if r.model(n).card.is_vae)
    for part in ("_encoder", "_decoder"):
        shutil.copytree(repo / (name + part), dest / (name + part))
    return dest, name


def wait_for(cond, timeout: float) -> bool:
    """Poll ``cond()`` every 50 ms for up to ``timeout`` seconds; its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return bool(cond())
