"""aeserve.serve.workdirs: a SIGKILLed ``aeserve serve`` leaves its work directory behind; the
next start removes the directories of dead processes and never one of a live process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from serve_helpers import fake_tritonserver

from aeserve.serve import free_ports, serve
from aeserve.serve.process import SHM_DIR, start_time
from aeserve.serve.workdirs import OWNER_FILE, PREFIX, create_workdir, read_owner, remove_stale


def dead_process() -> dict:
    """(pid, start time) of a process that has exited."""
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    me = {"pid": p.pid, "start": start_time(p.pid)}
    p.kill()
    p.wait()
    return me


def make_dir(root: Path, name: str, info: dict | None) -> Path:
    d = root / (PREFIX + name)
    (d / "repository").mkdir(parents=True)
    if info is not None:
        (d / OWNER_FILE).write_text(json.dumps(info))
    return d


def test_remove_stale_removes_only_dirs_of_dead_processes(tmp_path):
    dead, me = dead_process(), {"pid": os.getpid(), "start": start_time(os.getpid())}
    reused = {"pid": os.getpid(), "start": me["start"] - 1}  # our pid, but an older process's start time
    shm = SHM_DIR / f"aeserve_{dead['pid']}_test{os.getpid()}_x"
    shm.write_bytes(b"left behind")
    gone = [make_dir(tmp_path, "dead", {"owner": dead, "server": dead, "shm_prefix": shm.name[:-1]}),
            make_dir(tmp_path, "reused", {"owner": reused})]
    kept = [make_dir(tmp_path, "live", {"owner": me}),
            make_dir(tmp_path, "server-live", {"owner": dead, "server": me}),
            make_dir(tmp_path, "no-owner", None)]
    assert sorted(remove_stale(tmp_path)) == sorted(gone)
    assert not any(d.exists() for d in gone) and all(d.exists() for d in kept)
    assert not shm.exists()


def test_create_workdir_records_its_owner(tmp_path):
    d = create_workdir(tmp_path)
    assert d.parent == tmp_path and d.name.startswith(PREFIX)
    assert read_owner(d) == {"owner": {"pid": os.getpid(), "start": start_time(os.getpid())}}


def test_sigkilled_serve_leaves_its_workdir_and_the_next_start_removes_it(serving_repository, tmp_path, monkeypatch):
    fake_tritonserver(tmp_path, monkeypatch)
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    h, g, m = free_ports(3)
    cmd = [sys.executable, "-c", "from aeserve.cli import main; main()", "serve", "--repo", str(serving_repository),
           "--mode", "native", "--http-port", str(h), "--grpc-port", str(g), "--metrics-port", str(m)]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                         env=dict(os.environ, TMPDIR=str(temp)))
    try:
        for line in p.stdout:
            if line.startswith("ready"):
                break
        (left,) = temp.glob(PREFIX + "*")
        server_pid = read_owner(left)["server"]["pid"]
        os.kill(p.pid, signal.SIGKILL)
        p.wait(10)
    finally:
        if p.poll() is None:
            p.kill()
    assert left.exists()  # nobody cleaned up after the SIGKILL
    deadline = time.monotonic() + 10  # the server follows its parent (SIGTERM on parent death)
    while start_time(server_pid) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    with serve(serving_repository, http_port=h, grpc_port=g, metrics_port=m, ready_timeout=30) as server:
        assert not left.exists(), "the dead server's work directory was not removed"
        assert server.workdir.exists() and server.workdir.parent == temp
        assert start_time(server_pid) is None
