"""Process plumbing for the Triton launcher (Linux): spawn in its own process group, stop
the server and everything it started, clean shared memory, check ports.

    p = spawn(["tritonserver", ...], env=env, sink=logfile)   # own session / process group
    terminate(p, timeout=15)      # SIGTERM, SIGKILL to the group after `timeout` s
    end_group(p.pid)              # leftovers (Python-backend stubs): SIGTERM, then SIGKILL
    remove_shm(prefix)            # unlink /dev/shm/<prefix>*
    check_port_free("127.0.0.1", 8000)   # ServerError if something listens there
    free_ports(3)                 # three distinct free loopback ports
    start_time(pid)               # kernel start time of a live process (None if gone)
"""

from __future__ import annotations

import ctypes
import os
import secrets
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from ..errors import ServerError

SHM_DIR = Path("/dev/shm")
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except Exception:  # noqa: BLE001 - best effort; stop()/atexit still clean up
        pass


def spawn(cmd: list[str], *, env: dict[str, str], sink: Any, die_with_parent: bool | None = None) -> subprocess.Popen:
    """Start ``cmd`` as the leader of a new session (so a terminal's Ctrl-C reaches only us and
    we decide how the server stops). With ``die_with_parent`` the child also gets SIGTERM
    when the spawning *thread* ends (PR_SET_PDEATHSIG), so no server outlives this process;
    the default sets it from the main thread only (other threads may end before the child;
    a supervisor thread that outlives its children passes True)."""
    if die_with_parent is None:
        die_with_parent = threading.current_thread() is threading.main_thread()
    return subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=sink,
                            stderr=subprocess.STDOUT if sink is not None else None,
                            start_new_session=True, preexec_fn=_die_with_parent if die_with_parent else None)


def _killpg(pgid: int, sig: int) -> bool:
    try:
        os.killpg(pgid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def terminate(process: subprocess.Popen, timeout: float) -> int:
    """SIGTERM the process (graceful Triton shutdown), SIGKILL its group after ``timeout`` s; exit code."""
    if process.poll() is None:
        try:
            process.send_signal(signal.SIGTERM)
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            _killpg(process.pid, signal.SIGKILL)
    return process.wait()


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of ``/proc/<pid>/stat`` after the command name (state, ppid, pgrp, ...); None if gone."""
    try:
        stat = (Path("/proc") / str(pid) / "stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2:].split()


def start_time(pid: int) -> int | None:
    """Kernel start time (clock ticks since boot) of live process ``pid``; None if gone or a zombie.
    (pid, start time) names a process uniquely even after its pid is reused."""
    fields = _stat_fields(pid)
    if fields is None or fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes whose process group is ``pgid``."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))  # state ppid pgrp ...
        if fields is not None and fields[0] not in ("Z", "X") and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


def end_group(pgid: int, grace: float = 3.0) -> None:
    """End every process left in group ``pgid``: SIGTERM, then SIGKILL after ``grace`` s.
    ServerError if some survive SIGKILL (should not happen)."""
    if not group_members(pgid):
        return
    _killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while group_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if group_members(pgid):
        _killpg(pgid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while group_members(pgid) and time.monotonic() < deadline:
            time.sleep(0.05)
    left = group_members(pgid)
    if left:
        raise ServerError(f"processes {left} of the Triton server group {pgid} survived SIGKILL")


def shm_prefix() -> str:
    """A fresh, unique prefix for the Python backend's shared-memory regions."""
    return f"aeserve_{os.getpid()}_{secrets.token_hex(4)}_"


def shm_segments(prefix: str) -> list[Path]:
    """Shared-memory segments whose name starts with ``prefix``."""
    if not SHM_DIR.is_dir():
        return []
    return sorted(p for p in SHM_DIR.iterdir() if p.name.startswith(prefix))


def remove_shm(prefix: str) -> None:
    """Unlink the ``/dev/shm`` segments left with ``prefix`` (e.g. after a SIGKILL)."""
    for p in shm_segments(prefix):
        try:
            p.unlink()
        except FileNotFoundError:
            pass


def check_port_free(host: str, port: int) -> None:
    """ServerError if ``host:port`` cannot be bound (in use, or not an address of this machine)."""
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host.strip("[]"), port))
        except OSError as e:
            raise ServerError(f"cannot listen on {host}:{port} ({e.strerror or e}); another server may be "
                              "running there - choose other ports (--http-port/--grpc-port/--metrics-port) "
                              "or stop it") from None


def free_ports(n: int = 3, host: str = "127.0.0.1") -> list[int]:
    """``n`` distinct ports the OS considers free on ``host`` right now (for tests and benchmarks)."""
    socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(n)]
    try:
        for s in socks:
            s.bind((host, 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()
