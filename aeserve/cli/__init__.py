"""The ``aeserve`` command line: each verb is a thin shell over a library call.

Each verb lives in its own module in this package and registers itself on ``cli``;
modules are imported lazily by name so ``aeserve generate`` never imports torch.
"""

from __future__ import annotations

import importlib
import logging
import sys

import click

from ..errors import AeserveError

# verb -> module in aeserve.cli that defines a click command named ``command``
VERBS = {
    "train": "train",
    "export": "export",
    "regenerate": "export",
    "models": "models",
    "generate": "client_verbs",
    "interpolate": "client_verbs",
    "denoise": "client_verbs",
    "compress": "client_verbs",
    "decompress": "client_verbs",
    "score": "client_verbs",
    "latent-plot": "client_verbs",
    "inpaint": "restore",
    "upscale": "restore",
    "colorize": "restore",
    "anomaly-map": "restore",
    "classify": "restore",
    "finetune": "finetune",
    "serve": "serve",
    "eval": "eval",
    "bench": "bench",
    "batch": "batch",
    "build-classifier": "build_classifier",
    "fit-prior": "prior_verbs",
    "shift": "prior_verbs",
}


class LazyGroup(click.Group):
    """Imports a verb's module only when that verb is used (or listed in --help)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(v for v in VERBS if self._load(v) is not None)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        return self._load(name)

    def _load(self, name: str) -> click.Command | None:
        module = VERBS.get(name)
        if module is None:
            return None
        mod = importlib.import_module(f"{__name__}.{module}")
        return getattr(mod, "COMMANDS", {}).get(name)


LOG_FORMAT = "aeserve %(levelname)s %(name)s: %(message)s"


def _enable_logging(ctx: click.Context, verbose: int) -> None:
    """Send ``aeserve.*`` log records to stderr for this command (INFO; DEBUG with -vv).

    Only the CLI configures logging; the library is silent (NullHandler). The handler
    and level are removed again when the command ends, so in-process callers see no change.
    """
    if verbose < 1:
        return
    logger = logging.getLogger("aeserve")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose > 1 else logging.INFO)

    def restore() -> None:
        logger.removeHandler(handler)
        logger.setLevel(previous)

    ctx.call_on_close(restore)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="aeserve")
@click.option("-v", "--verbose", count=True,
              help="log what aeserve decides and retries to stderr (runtime choice, fallbacks, reconnects, "
                   "export steps); -vv adds debug detail")
@click.pass_context
def cli(ctx: click.Context, verbose: int) -> None:
    """aeserve: train autoencoders, export them to ONNX/Triton, and serve them."""
    _enable_logging(ctx, verbose)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: aeserve errors become one line on stderr and exit code 2."""
    try:
        cli.main(args=argv, standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except AeserveError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
