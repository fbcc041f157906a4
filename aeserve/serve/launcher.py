"""Start a real Triton Inference Server over a model repository, wait for it, stop it cleanly.

    from aeserve.serve import serve
    with serve("model_repository", http_port=8000, grpc_port=8001) as server:
        print(server.mode, server.url_http, server.url_grpc, server.metrics_url, server.pid)
        ...                                   # server answers /v2/health/ready here
    # stopped: no process left, derived files and shared-memory segments removed

Modes: ``native`` runs a ``tritonserver`` found on PATH (the official image: native ONNX
Runtime backend, GPU) over the repository as is; ``bundled`` runs the binary inside the
``nvidia-pytriton`` wheel over a derived repository (each ONNX model served by a
Python-backend model running the same file with ONNX Runtime; see ``derived.py``);
``auto`` picks native if ``tritonserver`` is on PATH, else bundled.

The server is supervised (``supervisor.py``): if its process dies it is restarted on the
same ports, within the limits of a :class:`RestartPolicy`. Its logging and trace APIs, and
with explicit model control its repository API, need the handle's ``api_key``
(``access.py``). Its work directory records the owning process, so a later start removes
the directories of processes that died without cleaning up (``workdirs.py``).

Raises: InputError (bad mode, port, timeout, API key, log path), RepositoryError
(missing/invalid repository), ServerError (no binary, port in use, server exited while
starting), ServerUnavailableError (not ready within ``ready_timeout``).
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import subprocess
import threading
import time
import urllib.request
from pathlib import Path
from typing import IO

from ..errors import ServerError, ServerUnavailableError
from ..repository import CONFIG_FILENAME, Repository, default_repository
from . import process as proc
from . import workdirs
from .access import resolve_api_key
from .bundled import find_bundled
from .derived import derive_repository
from .options import check_args, resolve_mode, server_args
from .serverlog import open_log, server_errors
from .supervisor import RestartPolicy, Supervisor, describe_exit

SHM_BYTES = 8 * 1024 * 1024  # Python-backend shared memory per stub: initial size and growth step
_LIVE: "set[ServerHandle]" = set()  # strong references: a dropped handle is still stopped at exit
_LIVE_LOCK = threading.Lock()
logger = logging.getLogger(__name__)


class ServerHandle:
    """A running Triton server started by :func:`serve`. Context manager; ``stop()`` is idempotent."""

    def __init__(self, *, process: subprocess.Popen, mode: str, host: str, ports: tuple[int, int, int],
                 workdir: Path, log_path: Path | None, log_file: IO | None, shm_prefix: str | None,
                 models: list[str], repository: Path, source: Path, exit_timeout: int,
                 command: list[str], env: dict[str, str], sink: object, api_key: str, model_control: str,
                 log_from: int = 0):
        self.process, self.mode, self.host = process, mode, host
        self.http_port, self.grpc_port, self.metrics_port = ports
        self.workdir, self.log_path, self._log_file = workdir, log_path, log_file
        self.shm_prefix, self.models = shm_prefix, models
        self.repository, self.source = repository, source  # what Triton reads / what the caller passed
        self.exit_timeout = exit_timeout
        self.api_key, self.model_control = api_key, model_control
        self._command, self._env, self._sink = command, env, sink
        self._log_from = log_from  # where the current process's part of the log begins
        self._ready_pid: int | None = None  # the last process seen ready
        self.restarts = 0  # how often the supervisor brought the server back
        self.failure: str | None = None  # why the supervisor gave up
        self._supervisor: Supervisor | None = None
        self._stopped = False
        self._stop_requested = threading.Event()
        self._down = threading.Event()  # stopped, or the supervisor gave up
        self._lock = threading.Lock()
        with _LIVE_LOCK:
            _LIVE.add(self)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def connect_host(self) -> str:
        """Where a local client connects: the bound host, or loopback for a wildcard bind."""
        return "127.0.0.1" if self.host in ("0.0.0.0", "", "::", "[::]") else self.host

    @property
    def url_http(self) -> str:
        return f"http://{self.connect_host}:{self.http_port}"

    @property
    def url_grpc(self) -> str:
        return f"grpc://{self.connect_host}:{self.grpc_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://{self.connect_host}:{self.metrics_port}/metrics"

    @property
    def returncode(self) -> int | None:
        return self.process.poll()

    def alive(self) -> bool:
        """True while the server process runs."""
        return self.process.poll() is None

    def ready(self, timeout: float = 1.0) -> bool:
        """True if the server answers ``GET /v2/health/ready`` with 200."""
        return self.alive() and _http_ok(f"{self.url_http}/v2/health/ready", timeout)

    @property
    def stopping(self) -> bool:
        """True once :meth:`stop` was called."""
        return self._stopped

    def wait(self, timeout: float | None = None) -> int | None:
        """Block until the server is down for good (or ``timeout`` passes); its last exit code or None.

        Supervised: down means stopped, or the supervisor gave up (``failure`` says why);
        a crash it recovers from does not end the wait. Unsupervised: the process exited."""
        if self._supervisor is None:
            try:
                return self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                return None
        if not self._down.wait(timeout):
            return None
        return self.process.poll()

    # ---- used by the supervisor ------------------------------------------------------
    def supervise(self, policy: RestartPolicy, ready_timeout: float) -> None:
        """Start the supervisor thread (once)."""
        if self._supervisor is None and not self._stopped:
            self._supervisor = Supervisor(self, policy, ready_timeout)
            self._supervisor.start()

    def recent_errors(self) -> list[str]:
        """Error lines of the server log's tail, with the derived repository path replaced by the caller's."""
        return [e.replace(str(self.repository), str(self.source)) for e in server_errors(self.log_tail(400))]

    def was_serving(self, process: subprocess.Popen) -> bool:
        """True if ``process`` had become ready, or its log says it started serving HTTP
        (a crashing request can arrive before the readiness poll sees it)."""
        return process.pid == self._ready_pid or "Started HTTPService" in self.log_tail(10_000)

    def give_up(self, reason: str) -> None:
        self.failure = reason
        self._down.set()

    def wait_stopped(self, timeout: float) -> bool:
        """Sleep up to ``timeout`` s; True (early) if :meth:`stop` was called."""
        return self._stop_requested.wait(timeout)

    def cleanup_process(self, process: subprocess.Popen) -> None:
        """End what a dead server process left: its process group (Python-backend stubs) and shared memory."""
        try:
            proc.end_group(process.pid)
        except ServerError as e:
            logger.warning("%s", e)
        if self.shm_prefix:
            proc.remove_shm(self.shm_prefix)

    def respawn(self, ready_timeout: float) -> bool:
        """Start the same command again (same ports, same work directory) and wait for readiness.
        True when ready; False if stopped meanwhile or the new process died or hung while starting
        (a hung one is killed)."""
        with self._lock:
            if self._stopped:
                return False
            self._log_from = self._log_size()
            self.process = proc.spawn(self._command, env=self._env, sink=self._sink, die_with_parent=True)
        workdirs.record(self.workdir, server_pid=self.process.pid, shm_prefix=self.shm_prefix)
        try:
            _wait_ready(self, ready_timeout)
            self._ready_pid = self.process.pid
            return True
        except ServerError as e:
            if not self._stopped:
                logger.warning("restarted tritonserver did not become ready: %s", e)
                proc.terminate(self.process, 1.0)
            return False

    def log_tail(self, lines: int = 20) -> str:
        """The last lines the current server process wrote to its log ('' when the log goes elsewhere)."""
        if self.log_path is None or not self.log_path.is_file():
            return ""
        with open(self.log_path, "rb") as f:
            f.seek(self._log_from)
            text = f.read().decode(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def _log_size(self) -> int:
        try:
            return self.log_path.stat().st_size if self.log_path is not None else 0
        except OSError:
            return 0

    def stop(self, timeout: float | None = None) -> int | None:
        """Stop the server and everything it started; remove derived files and shared memory.

        SIGTERM to the server (Triton drains requests and unloads models within its exit
        timeout), SIGKILL to its process group if it overstays ``timeout`` (default exit
        timeout + 10 s), then any process left in the group (Python-backend stubs) is
        ended, ``/dev/shm`` segments with this server's prefix are unlinked and the work
        directory is removed. Returns the server's exit code.
        """
        with self._lock:
            if self._stopped:
                return self.process.returncode
            self._stopped = True
            self._stop_requested.set()
        limit = self.exit_timeout + 10 if timeout is None else timeout
        try:
            proc.terminate(self.process, limit)
            proc.end_group(self.process.pid)
        finally:
            sup = self._supervisor
            if sup is not None and sup is not threading.current_thread():
                sup.join(limit)
            if self.shm_prefix:
                proc.remove_shm(self.shm_prefix)
            if self._log_file is not None:
                self._log_file.close()
            shutil.rmtree(self.workdir, ignore_errors=True)
            self._down.set()
            with _LIVE_LOCK:
                _LIVE.discard(self)
        logger.info("tritonserver stopped (pid %d, %s)", self.pid, describe_exit(self.process.returncode))
        return self.process.returncode

    def __enter__(self) -> "ServerHandle":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.alive() else f"exited({self.returncode})"
        state += f", restarts={self.restarts}" if self.restarts else ""
        return f"ServerHandle(mode={self.mode!r}, pid={self.pid}, http={self.url_http}, grpc={self.url_grpc}, {state})"


def _http_ok(url: str, timeout: float) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 - local URL we built
            return r.status == 200
    except (OSError, ValueError):
        return False


def serve(repo: str | os.PathLike[str] | None = None, *, http_port: int = 8000, grpc_port: int = 8001,
          metrics_port: int = 8002, host: str = "127.0.0.1", mode: str = "auto", model_control: str = "none",
          log: str | os.PathLike[str] | None = None, ready_timeout: float = 60.0,
          exit_timeout: int = 5, api_key: str | None = None,
          restart: RestartPolicy | None = RestartPolicy()) -> ServerHandle:
    """Start Triton over ``repo`` (default: :func:`aeserve.repository.default_repository`) and
    return once ``/v2/health/ready`` answers 200 (every model loaded).

    ``host`` is the bind address (loopback unless you ask otherwise). ``model_control``
    ``explicit`` loads every model at start and allows load/unload through the API, for
    requests carrying ``api_key`` (see ``access.py``; generated when None, required on a
    non-loopback host); the key is ``handle.api_key``. ``log``: None keeps the server log
    in the work directory (its tail is quoted in errors), a path appends to that file,
    ``"-"`` lets it through to this process's stdout/stderr. ``restart``: how a server
    that dies is brought back (None: not at all). See the module docstring for modes and errors.
    """
    ports = (http_port, grpc_port, metrics_port)
    check_args(ports, model_control, ready_timeout, exit_timeout, restart)
    key = resolve_api_key(api_key, host=host, model_control=model_control)
    repository = Path(repo) if repo is not None else default_repository()
    Repository(repository)  # RepositoryError if missing / not a directory
    mode = resolve_mode(mode)
    for p in ports:
        proc.check_port_free(host, p)
    workdir = workdirs.create_workdir()
    try:
        handle = _launch(repository, workdir, mode=mode, host=host, ports=ports, model_control=model_control,
                         log=log, exit_timeout=exit_timeout, api_key=key)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    try:
        _wait_ready(handle, ready_timeout)
    except BaseException:
        handle.stop()
        raise
    handle._ready_pid = handle.pid
    if restart is not None:
        handle.supervise(restart, ready_timeout)
    logger.info("tritonserver ready: %s mode, pid %d, http %s, grpc %s, %d models, %s", mode, handle.pid,
             handle.url_http, handle.url_grpc, len(handle.models),
             "supervised" if restart is not None else "not supervised")
    return handle


def _launch(repository: Path, workdir: Path, *, mode: str, host: str, ports: tuple[int, int, int],
            model_control: str, log: str | os.PathLike[str] | None, exit_timeout: int, api_key: str) -> ServerHandle:
    shm_prefix = None
    if mode == "native":
        served = repository.resolve()
        models = sorted(d.name for d in served.iterdir() if (d / CONFIG_FILENAME).is_file())
        cmd = [shutil.which("tritonserver") or "tritonserver"]
        env = dict(os.environ)
    else:
        bundled = find_bundled()
        served = workdir / "repository"
        models = derive_repository(repository, served)
        shm_prefix = proc.shm_prefix()
        cmd = [str(bundled.binary), f"--backend-directory={bundled.prepare_backends(workdir)}",
               "--allow-gpu-metrics=false",
               f"--backend-config=python,shm-region-prefix-name={shm_prefix}",
               f"--backend-config=python,shm-default-byte-size={SHM_BYTES}",
               f"--backend-config=python,shm-growth-byte-size={SHM_BYTES}"]
        env = bundled.environment()
    cmd += server_args(repository=served, host=host, ports=ports, model_control=model_control,
                       exit_timeout=exit_timeout, api_key=api_key)
    log_path, log_file, sink = open_log(log, workdir)
    log_from = log_path.stat().st_size if log_path is not None else 0
    try:
        process = proc.spawn(cmd, env=env, sink=sink)
    except OSError as e:
        if log_file is not None:
            log_file.close()
        raise ServerError(f"could not start {cmd[0]}: {e}") from None
    workdirs.record(workdir, server_pid=process.pid, shm_prefix=shm_prefix)
    return ServerHandle(process=process, mode=mode, host=host, ports=ports, workdir=workdir, log_path=log_path,
                        log_file=log_file, shm_prefix=shm_prefix, models=models, repository=served, source=repository,
                        exit_timeout=exit_timeout, command=cmd, env=env, sink=sink, api_key=api_key,
                        model_control=model_control, log_from=log_from)


def _wait_ready(handle: ServerHandle, ready_timeout: float) -> None:
    deadline = time.monotonic() + ready_timeout
    url = f"{handle.url_http}/v2/health/ready"
    while True:
        if handle.stopping:
            raise ServerError("the server was stopped while starting")
        if not handle.alive():
            raise ServerError(f"tritonserver exited with code {handle.returncode} before it was ready"
                              + _tail_note(handle))
        if _http_ok(url, timeout=1.0):
            return
        if time.monotonic() > deadline:
            raise ServerUnavailableError(f"tritonserver (pid {handle.pid}) was not ready within {ready_timeout:g} s "
                                         f"at {url}" + _tail_note(handle))
        time.sleep(0.1)


def _tail_note(handle: ServerHandle) -> str:
    lines = handle.recent_errors() or handle.log_tail(10).splitlines()
    return ("; server log says:\n  " + "\n  ".join(lines)) if lines else ""


@atexit.register
def _stop_all() -> None:
    with _LIVE_LOCK:
        handles = list(_LIVE)
    for handle in handles:
        handle.stop()

