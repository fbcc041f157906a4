"""``aeserve models``: list a repository's models with their cards (no torch).

    aeserve models --repo model_repository
"""

from __future__ import annotations

import click


@click.command("models")
@click.option("--repo", default=None, help="model repository [default: $AESERVE_REPOSITORY or ./model_repository]")
def models_command(repo: str | None) -> None:
    """List models: name, family, arch, latent size, dataset, versions, test metrics."""
    from ..export.listing import format_table, list_models

    click.echo(format_table(list_models(repo)))


COMMANDS = {"models": models_command}
