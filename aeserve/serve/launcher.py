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

Raises: InputError (bad mode, port, timeout), RepositoryError (missing/invalid
repository), ServerError (no binary, port in use, server exited while starting),
ServerUnavailableError (not ready within ``ready_timeout``).
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.request
import weakref
from pathlib import Path
from typing import IO

from ..errors import InputError, ServerError, ServerUnavailableError
from ..repository import CONFIG_FILENAME, Repository, default_repository
from . import process as proc
from .bundled import find_bundled
from .derived import derive_repository

MODES = ("auto", "native", "bundled")
MODEL_CONTROLS = ("none", "explicit")
SHM_BYTES = 8 * 1024 * 1024  # Python-backend shared memory per stub: initial size and growth step
_LIVE: "weakref.WeakSet[ServerHandle]" = weakref.WeakSet()


class ServerHandle:
    """A running Triton server started by :func:`serve`. Context manager; ``stop()`` is idempotent."""

    def __init__(self, *, process: subprocess.Popen, mode: str, host: str, ports: tuple[int, int, int],
                 workdir: Path, log_path: Path | None, log_file: IO | None, shm_prefix: str | None,
                 models: list[str], repository: Path, source: Path, exit_timeout: int):
        self.process, self.mode, self.host = process, mode, host
        self.http_port, self.grpc_port, self.metrics_port = ports
        self.workdir, self.log_path, self._log_file = workdir, log_path, log_file
        self.shm_prefix, self.models = shm_prefix, models
        self.repository, self.source = repository, source  # what Triton reads / what the caller passed
        self.exit_timeout = exit_timeout
        self._stopped = False
        self._lock = threading.Lock()
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

    def wait(self, timeout: float | None = None) -> int | None:
        """Block until the server exits (or ``timeout`` passes); its exit code or None."""
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of the server log ('' when the log goes elsewhere)."""
        if self.log_path is None or not self.log_path.is_file():
            return ""
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

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
        limit = self.exit_timeout + 10 if timeout is None else timeout
        try:
            proc.terminate(self.process, limit)
            proc.end_group(self.process.pid)
        finally:
            if self.shm_prefix:
                proc.remove_shm(self.shm_prefix)
            if self._log_file is not None:
                self._log_file.close()
            shutil.rmtree(self.workdir, ignore_errors=True)
            _LIVE.discard(self)
        return self.process.returncode

    def __enter__(self) -> "ServerHandle":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.alive() else f"exited({self.returncode})"
        return f"ServerHandle(mode={self.mode!r}, pid={self.pid}, http={self.url_http}, grpc={self.url_grpc}, {state})"


def _http_ok(url: str, timeout: float) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 - local URL we built
            return r.status == 200
    except (OSError, ValueError):
        return False


def resolve_mode(mode: str) -> str:
    """``native`` or ``bundled`` for a requested mode; InputError for an unknown one,
    ServerError if ``native`` is forced and no ``tritonserver`` is on PATH."""
    if mode not in MODES:
        raise InputError(f"unknown serving mode {mode!r}; expected one of {', '.join(MODES)}")
    native = shutil.which("tritonserver")
    if mode == "native" and native is None:
        raise ServerError("mode 'native' needs a tritonserver on PATH (the official Triton image); "
                          "none found - use mode 'bundled' (the nvidia-pytriton wheel) instead")
    if mode == "auto":
        return "native" if native else "bundled"
    return mode


def server_args(*, repository: Path, host: str, ports: tuple[int, int, int], model_control: str,
                exit_timeout: int) -> list[str]:
    """Command-line options common to both modes (binary and backend options excluded)."""
    http, grpc, metrics = ports
    args = [f"--model-repository={repository}",
            f"--http-address={host}", f"--http-port={http}",
            f"--grpc-address={host}", f"--grpc-port={grpc}",
            f"--metrics-address={host}", f"--metrics-port={metrics}",
            f"--exit-timeout-secs={exit_timeout}",
            f"--model-control-mode={model_control}"]
    if model_control == "explicit":
        args.append("--load-model=*")
    return args


def _check_args(ports: tuple[int, int, int], model_control: str, ready_timeout: float, exit_timeout: int) -> None:
    for p in ports:
        if not isinstance(p, int) or isinstance(p, bool) or not 1 <= p <= 65535:
            raise InputError(f"ports must be integers in 1..65535, got {p!r}")
    if len(set(ports)) != 3:
        raise InputError(f"HTTP, gRPC and metrics ports must differ, got {ports}")
    if model_control not in MODEL_CONTROLS:
        raise InputError(f"unknown model control {model_control!r}; expected one of {', '.join(MODEL_CONTROLS)}")
    if not ready_timeout > 0:
        raise InputError(f"ready_timeout must be > 0 seconds, got {ready_timeout!r}")
    if not isinstance(exit_timeout, int) or exit_timeout < 0:
        raise InputError(f"exit_timeout must be a non-negative integer of seconds, got {exit_timeout!r}")


def _open_log(log: str | os.PathLike[str] | None, workdir: Path) -> tuple[Path | None, IO | None, object]:
    """(path to read tails from, file we own, what Popen writes to)."""
    if log == "-":
        return None, None, None  # inherit the caller's stdout/stderr
    path = workdir / "tritonserver.log" if log is None else Path(log)
    f = open(path, "ab", buffering=0)  # noqa: SIM115 - closed in ServerHandle.stop
    return path, f, f


def serve(repo: str | os.PathLike[str] | None = None, *, http_port: int = 8000, grpc_port: int = 8001,
          metrics_port: int = 8002, host: str = "127.0.0.1", mode: str = "auto", model_control: str = "none",
          log: str | os.PathLike[str] | None = None, ready_timeout: float = 60.0,
          exit_timeout: int = 5) -> ServerHandle:
    """Start Triton over ``repo`` (default: :func:`aeserve.repository.default_repository`) and
    return once ``/v2/health/ready`` answers 200 (every model loaded).

    ``host`` is the bind address (loopback unless you ask otherwise). ``model_control``
    ``explicit`` loads every model at start and allows load/unload through the API.
    ``log``: None keeps the server log in the work directory (its tail is quoted in
    errors), a path appends to that file, ``"-"`` lets it through to this process's
    stdout/stderr. See the module docstring for modes and errors.
    """
    ports = (http_port, grpc_port, metrics_port)
    _check_args(ports, model_control, ready_timeout, exit_timeout)
    repository = Path(repo) if repo is not None else default_repository()
    Repository(repository)  # RepositoryError if missing / not a directory
    mode = resolve_mode(mode)
    for p in ports:
        proc.check_port_free(host, p)
    workdir = Path(tempfile.mkdtemp(prefix="aeserve-serve-"))
    try:
        handle = _launch(repository, workdir, mode=mode, host=host, ports=ports, model_control=model_control,
                         log=log, exit_timeout=exit_timeout)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    try:
        _wait_ready(handle, ready_timeout)
    except BaseException:
        handle.stop()
        raise
    return handle


def _launch(repository: Path, workdir: Path, *, mode: str, host: str, ports: tuple[int, int, int],
            model_control: str, log: str | os.PathLike[str] | None, exit_timeout: int) -> ServerHandle:
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
                       exit_timeout=exit_timeout)
    log_path, log_file, sink = _open_log(log, workdir)
    try:
        process = proc.spawn(cmd, env=env, sink=sink)
    except OSError as e:
        if log_file is not None:
            log_file.close()
        raise ServerError(f"could not start {cmd[0]}: {e}") from None
    return ServerHandle(process=process, mode=mode, host=host, ports=ports, workdir=workdir, log_path=log_path,
                        log_file=log_file, shm_prefix=shm_prefix, models=models, repository=served, source=repository,
                        exit_timeout=exit_timeout)


def _wait_ready(handle: ServerHandle, ready_timeout: float) -> None:
    deadline = time.monotonic() + ready_timeout
    url = f"{handle.url_http}/v2/health/ready"
    while True:
        if not handle.alive():
            raise ServerError(f"tritonserver exited with code {handle.returncode} before it was ready"
                              + _tail_note(handle))
        if _http_ok(url, timeout=1.0):
            return
        if time.monotonic() > deadline:
            raise ServerUnavailableError(f"tritonserver (pid {handle.pid}) was not ready within {ready_timeout:g} s "
                                         f"at {url}" + _tail_note(handle))
        time.sleep(0.1)


_ERROR_LINE = re.compile(r"^E\d{4} [\d:.]+ +\d+ [^\]]*\] (.*)$")
_BENIGN = ("CudaDriverHelper has not been initialized", "Failed to initialize CUDA", "GPU metrics")


def server_errors(log_text: str, limit: int = 6) -> list[str]:
    """The distinct error messages of a Triton log (``E...`` lines, ``error: ...``), last ``limit``."""
    out: list[str] = []
    for line in log_text.splitlines():
        m = _ERROR_LINE.match(line)
        msg = m.group(1).strip('"') if m else (line if line.startswith("error:") else None)
        if msg is None or any(b in msg for b in _BENIGN):
            continue
        msg = msg.split("\\n\\nAt:")[0].replace("\\n", " ").strip()
        if msg not in out:
            out.append(msg)
    return out[-limit:]


def _tail_note(handle: ServerHandle) -> str:
    text = handle.log_tail(400)
    errors = [e.replace(str(handle.repository), str(handle.source)) for e in server_errors(text)]
    lines = errors or text.splitlines()[-10:]
    return ("; server log says:\n  " + "\n  ".join(lines)) if lines else ""


@atexit.register
def _stop_all() -> None:
    for handle in list(_LIVE):
        handle.stop()

