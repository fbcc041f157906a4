"""``aeserve serve``: run a real Triton server over a model repository in the foreground.

    aeserve serve                                   # ./model_repository on 127.0.0.1:8000/8001/8002
    aeserve serve --repo my_repo --http-port 9000 --grpc-port 9001 --metrics-port 9002
    aeserve serve --mode bundled --host 0.0.0.0     # listen on every interface (explicit choice)
    aeserve serve --model-control explicit --api-key "$KEY"   # load/unload via the API, with the key

Prints the mode, the URLs, the API key and "ready", then waits until Ctrl-C (or
SIGTERM/SIGHUP) and stops the server cleanly. A server that dies is restarted on the same
ports (if more than ``--max-restarts`` restarts within ``--restart-window`` seconds never
get to serve, it gives up and exits with status 2); crashes and restarts are logged on
stderr. A thin shell over :func:`aeserve.serve.serve`.
"""

from __future__ import annotations

import logging
import signal
from contextlib import contextmanager
from typing import Iterator

import click

from ..errors import ServerError
from ..serve.access import API_KEY_ENV, API_KEY_HEADER, restricted_apis
from ..serve.launcher import ServerHandle, serve
from ..serve.options import MODEL_CONTROLS, MODES
from ..serve.supervisor import RestartPolicy
from . import LOG_FORMAT


@contextmanager
def _signals_interrupt() -> Iterator[None]:
    """SIGTERM / SIGHUP behave like Ctrl-C (KeyboardInterrupt) so the server is stopped cleanly."""
    def raise_interrupt(signum, frame):  # noqa: ARG001
        raise KeyboardInterrupt

    old = {s: signal.signal(s, raise_interrupt) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


@contextmanager
def _log_to_stderr() -> Iterator[None]:
    """Show the ``aeserve.serve`` logger's records (crashes, restarts, clean-ups) on stderr for
    the life of the command, with or without ``-v`` (not propagated, so never printed twice)."""
    logger = logging.getLogger("aeserve.serve")
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s " + LOG_FORMAT, "%H:%M:%S"))
    old = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.level, logger.propagate = old


def _announce(server: ServerHandle, key_given: bool) -> None:
    click.echo(f"mode: {server.mode} (pid {server.pid}, models: {', '.join(server.models)})")
    click.echo(f"http:    {server.url_http}")
    click.echo(f"grpc:    {server.url_grpc}")
    click.echo(f"metrics: {server.metrics_url}")
    apis = ", ".join(restricted_apis(server.model_control))
    shown = "(as given)" if key_given else server.api_key
    click.echo(f"api key: {shown} (header {API_KEY_HEADER}; needed for: {apis})")
    click.echo("ready (Ctrl-C to stop)", nl=True)


@click.command("serve")
@click.option("--repo", default=None, type=click.Path(file_okay=False, path_type=str),
              help="Model repository [default: ./model_repository].")
@click.option("--http-port", default=8000, show_default=True, type=int)
@click.option("--grpc-port", default=8001, show_default=True, type=int)
@click.option("--metrics-port", default=8002, show_default=True, type=int)
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Bind address; anything but loopback exposes the server to the network.")
@click.option("--mode", type=click.Choice(MODES), default="auto", show_default=True,
              help="native: tritonserver on PATH; bundled: the nvidia-pytriton binary; auto: native if found.")
@click.option("--model-control", type=click.Choice(MODEL_CONTROLS), default="none", show_default=True,
              help="explicit: load every model at start and allow load/unload through the API. WARNING: "
                   "a loaded model can be code the server runs; the repository API then needs the API key, "
                   "and a non-loopback --host needs --api-key.")
@click.option("--api-key", envvar=API_KEY_ENV, default=None, show_envvar=True,
              help=f"Key for the restricted APIs (logging, trace; with explicit control also the model "
                   f"repository), sent as header '{API_KEY_HEADER}'. Default: generated and printed.")
@click.option("--max-restarts", default=5, show_default=True, type=click.IntRange(min=0),
              help="Give up after this many restarts within --restart-window that never get to serve "
                   "(0: never restart). A server that was serving is always restarted.")
@click.option("--restart-window", default=60.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="Seconds over which crashes are counted for --max-restarts.")
@click.option("--log", default=None, help="Append the server log to this file ('-' = this terminal).")
@click.option("--ready-timeout", default=60.0, show_default=True, type=float, help="Seconds to wait for readiness.")
def serve_command(repo: str | None, http_port: int, grpc_port: int, metrics_port: int, host: str, mode: str,
                  model_control: str, api_key: str | None, max_restarts: int, restart_window: float,
                  log: str | None, ready_timeout: float) -> None:
    """Serve a model repository with a real Triton Inference Server until Ctrl-C.

    A server that dies is restarted on the same ports. With --model-control explicit,
    anyone holding the API key can load models, and models can be code: keep the key secret.
    """
    policy = RestartPolicy(max_restarts=max_restarts, window=restart_window) if max_restarts else None
    with _signals_interrupt(), _log_to_stderr():
        server = serve(repo, http_port=http_port, grpc_port=grpc_port, metrics_port=metrics_port, host=host,
                       mode=mode, model_control=model_control, log=log, ready_timeout=ready_timeout,
                       api_key=api_key or None, restart=policy)
        try:
            _announce(server, key_given=bool(api_key))
            code = server.wait()
            tail = server.log_tail(15)
            why = server.failure or f"tritonserver exited unexpectedly with code {code}"
            raise ServerError(why + (f"; last log lines:\n{tail}" if tail else ""))
        except KeyboardInterrupt:
            click.echo("stopping...", err=True)
        finally:
            server.stop()
        click.echo("stopped", err=True)


COMMANDS = {"serve": serve_command}
