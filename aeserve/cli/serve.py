"""``aeserve serve``: run a real Triton server over a model repository in the foreground.

    aeserve serve                                   # ./model_repository on 127.0.0.1:8000/8001/8002
    aeserve serve --repo my_repo --http-port 9000 --grpc-port 9001 --metrics-port 9002
    aeserve serve --mode bundled --host 0.0.0.0     # listen on every interface (explicit choice)

Prints the mode, the URLs and "ready", then waits until Ctrl-C (or SIGTERM/SIGHUP) and
stops the server cleanly. A thin shell over :func:`aeserve.serve.serve`.
"""

from __future__ import annotations

import signal
from contextlib import contextmanager
from typing import Iterator

import click

from ..errors import ServerError
from ..serve.launcher import MODEL_CONTROLS, MODES, ServerHandle, serve


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


def _announce(server: ServerHandle) -> None:
    click.echo(f"mode: {server.mode} (pid {server.pid}, models: {', '.join(server.models)})")
    click.echo(f"http:    {server.url_http}")
    click.echo(f"grpc:    {server.url_grpc}")
    click.echo(f"metrics: {server.metrics_url}")
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
              help="explicit: load every model at start and allow load/unload through the API.")
@click.option("--log", default=None, help="Append the server log to this file ('-' = this terminal).")
@click.option("--ready-timeout", default=60.0, show_default=True, type=float, help="Seconds to wait for readiness.")
def serve_command(repo: str | None, http_port: int, grpc_port: int, metrics_port: int, host: str, mode: str,
                  model_control: str, log: str | None, ready_timeout: float) -> None:
    """Serve a model repository with a real Triton Inference Server until Ctrl-C."""
    with _signals_interrupt():
        server = serve(repo, http_port=http_port, grpc_port=grpc_port, metrics_port=metrics_port, host=host,
                       mode=mode, model_control=model_control, log=log, ready_timeout=ready_timeout)
        try:
            _announce(server)
            code = server.wait()
            tail = server.log_tail(15)
            raise ServerError(f"tritonserver exited unexpectedly with code {code}"
                              + (f"; last log lines:\n{tail}" if tail else ""))
        except KeyboardInterrupt:
            click.echo("stopping...", err=True)
        finally:
            server.stop()
        click.echo("stopped", err=True)


COMMANDS = {"serve": serve_command}
