"""aeserve.serve.supervisor with the fast stand-in tritonserver: a server that dies while
serving always comes back on the same ports, logged; restarts that cannot get to serve are
given up on (``aeserve serve`` exits 2); a dropped handle is still stopped at exit, and
nothing is printed unless logging is set up."""

from __future__ import annotations

import logging
import math
import os
import signal
import subprocess
import sys
import time

import pytest
from cli_helpers import run_cli
from serve_helpers import fake_tritonserver, wait_for

from aeserve.errors import InputError
from aeserve.serve import RestartPolicy, free_ports, serve
from aeserve.serve.process import group_members

FAST = RestartPolicy(max_restarts=1, backoff=0.05, max_backoff=0.2)


def test_restart_policy_is_checked_and_backs_off_exponentially():
    for bad in ({"max_restarts": 0}, {"max_restarts": 1.5}, {"window": math.nan}, {"backoff": -1},
                {"max_backoff": True}, {"window": "60"}):
        with pytest.raises(InputError):
            RestartPolicy(**bad)
    p = RestartPolicy(backoff=0.5, max_backoff=3.0)
    assert [p.delay(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]
    assert p.delay(10_000) == 3.0
    with pytest.raises(InputError, match="restart must be a RestartPolicy"):
        serve(None, restart=5)


def test_a_killed_server_is_restarted_on_the_same_ports_and_logged(serving_repository, tmp_path, monkeypatch, caplog):
    record = fake_tritonserver(tmp_path, monkeypatch)
    h, g, m = free_ports(3)
    caplog.set_level(logging.INFO, logger="aeserve.serve")
    with serve(serving_repository, http_port=h, grpc_port=g, metrics_port=m, restart=FAST) as server:
        first = server.pid
        for n in (1, 2, 3):  # more crashes than max_restarts=1: a serving server always comes back
            pid = server.pid
            record.unlink()
            os.kill(pid, signal.SIGKILL)
            assert wait_for(lambda: server.restarts == n, 30), server
            assert server.pid != pid and server.ready() and server.url_http == f"http://127.0.0.1:{h}"
            assert f"--http-port={h}" in record.read_text()  # the same command, the same ports
            assert not group_members(pid)
        assert server.wait(0.1) is None and server.failure is None  # recovered crashes do not end the wait
        texts = [(r.levelname, r.getMessage()) for r in caplog.records if r.name.startswith("aeserve.serve")]
        assert any(lvl == "WARNING" and f"pid {first}) exited with signal SIGKILL while serving" in t
                   and "restarting on the same ports" in t for lvl, t in texts), texts
        assert any(lvl == "INFO" and "restarted" in t for lvl, t in texts), texts
        assert any(lvl == "INFO" and f"tritonserver ready: native mode, pid {first}" in t for lvl, t in texts), texts
    assert not server.alive() and not server.workdir.exists()
    assert "tritonserver stopped" in caplog.records[-1].getMessage()


def test_cli_gives_up_when_restarts_cannot_serve(serving_repository, tmp_path, monkeypatch, capsys):
    fake_tritonserver(tmp_path, monkeypatch, exit_after=1.0, fail_restarts=True)  # dies, then cannot start
    h, g, m = free_ports(3)
    t0 = time.monotonic()
    code, out, err = run_cli(["serve", "--repo", str(serving_repository), "--mode", "native",
                              "--http-port", str(h), "--grpc-port", str(g), "--metrics-port", str(m),
                              "--max-restarts", "1", "--restart-window", "120"], capsys)
    assert code == 2 and "ready" in out
    assert "exited with code 3 while serving" in err and "exited with code 1 before it was serving" in err
    assert "2 restarts within 120 s never got to serve, more than the 1 allowed; giving up" in err
    assert err.count("restarting on the same ports") == 2
    assert time.monotonic() - t0 < 60


DROPPED = """
import gc, os, signal, sys, time
from aeserve.serve import RestartPolicy, serve
server = serve(sys.argv[1], http_port={h}, grpc_port={g}, metrics_port={m},
               restart=RestartPolicy(backoff=0.05))
os.kill(server.pid, signal.SIGKILL)
deadline = time.monotonic() + 30
while server.restarts < 1 and time.monotonic() < deadline:
    time.sleep(0.05)
print(server.workdir, server.pid, server.restarts, flush=True)
del server
gc.collect()
"""


def test_dropped_handle_is_stopped_at_exit_and_the_library_prints_nothing(serving_repository, tmp_path, monkeypatch):
    fake_tritonserver(tmp_path, monkeypatch)
    h, g, m = free_ports(3)
    p = subprocess.run([sys.executable, "-c", DROPPED.format(h=h, g=g, m=m), str(serving_repository)],
                       capture_output=True, text=True, timeout=120, env=dict(os.environ, PYTHONWARNINGS="ignore"))
    assert p.returncode == 0, p.stderr
    workdir, pid, restarts = p.stdout.split()
    assert restarts == "1"
    assert p.stderr == ""  # a crash and a restart happened, yet nothing was printed: logging is the app's choice
    assert not os.path.exists(workdir), "the dropped handle escaped the exit hook"
    assert wait_for(lambda: not group_members(int(pid)), 10)
