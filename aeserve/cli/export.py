"""``aeserve export`` and ``aeserve regenerate``: thin shells over ``aeserve.export``.

    aeserve export --ckpt vae.pt --name mnist_vae --repo model_repository --max-batch 256
    aeserve export --ckpt vae.pt --name mnist_vae_int8 --quantize int8 --max-psnr-drop 0.25
    aeserve regenerate --manifest export/manifest.json --repo model_repository
"""

from __future__ import annotations

import click

from ..errors import ConfigError
from ..repository import DEFAULT_REPOSITORY


def _int_list(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        values = [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise ConfigError(f"--preferred-batch-sizes must be comma-separated integers like 64,256; got {text!r}") \
            from None
    return values or None


def _echo_result(r) -> None:
    via = "" if r.exporter == "dynamo" else " (dynamo export failed; used the TorchScript exporter)"
    q = r.quantization
    int8 = "" if q is None else (f"; int8 ({', '.join(f'{k} {v}' for k, v in q.methods.items())}): PSNR "
                                 f"{q.psnr_fp32:.2f} -> {q.psnr_int8:.2f} dB on {q.images} images, "
                                 f"bound {q.max_drop_db:g} dB")
    click.echo(f"exported {r.name} version {r.version}{' fp16' if r.fp16 else ''}{via}: "
               f"{' and '.join(str(p) for k, p in r.paths.items() if not k.endswith('_config'))} "
               f"(parity max abs diff {r.max_abs_diff:.2g}{int8})")


@click.command("export")
@click.option("--ckpt", required=True, help="checkpoint written by `aeserve train`")
@click.option("--repo", default=DEFAULT_REPOSITORY, show_default=True, help="Triton model repository")
@click.option("--name", default=None, help="model name [default: card name, else checkpoint file stem]")
@click.option("--max-batch", type=int, default=256, show_default=True, help="Triton max_batch_size")
@click.option("--kind", type=click.Choice(["gpu", "cpu"]), default="gpu", show_default=True,
              help="Triton instance_group kind")
@click.option("--instances", type=int, default=1, show_default=True, help="instances per device")
@click.option("--fp16", is_flag=True, help="FP16 weights and math (FP32 inputs/outputs), gated at 1e-2")
@click.option("--quantize", type=click.Choice(["int8"]), default=None,
              help="int8 graphs (ONNX Runtime quantization, calibrated on training images), refused if the "
                   "reconstruction PSNR drops more than --max-psnr-drop")
@click.option("--max-psnr-drop", type=float, default=None,
              help="int8 quality bound in dB [default: 0.25]")
@click.option("--preferred-batch-sizes", default=None, help="e.g. 64,256 [default: max/4,max]")
@click.option("--queue-delay-us", type=int, default=100, show_default=True, help="dynamic batching delay")
@click.option("--warmup", is_flag=True, help="add model_warmup (zeros at batch 1 and max)")
@click.option("--prior", default=None, help="card entries JSON from `aeserve fit-prior --out` to embed")
def export_command(ckpt: str, repo: str, name: str | None, max_batch: int, kind: str, instances: int,
                   fp16: bool, quantize: str | None, max_psnr_drop: float | None,
                   preferred_batch_sizes: str | None, queue_delay_us: int, warmup: bool,
                   prior: str | None) -> None:
    """Export a checkpoint's encoder and decoder as the next version in a Triton repository."""
    from ..export.exporter import export_checkpoint
    from ..export.manifest import read_card_entries

    extra = None if prior is None else read_card_entries(prior)

    _echo_result(export_checkpoint(ckpt, repo, name, max_batch=max_batch, kind=kind, instances=instances,
                                   fp16=fp16, preferred_batch_sizes=_int_list(preferred_batch_sizes),
                                   queue_delay_us=queue_delay_us, warmup=warmup, quantize=quantize,
                                   max_psnr_drop_db=max_psnr_drop, card_extra=extra))


@click.command("regenerate")
@click.option("--manifest", default="export/manifest.json", show_default=True, help="export manifest")
@click.option("--repo", default=DEFAULT_REPOSITORY, show_default=True, help="repository to rebuild")
def regenerate_command(manifest: str, repo: str) -> None:
    """Rebuild a model repository from the export manifest (atomically replaces --repo)."""
    from ..export.manifest import regenerate

    for r in regenerate(manifest, repo):
        _echo_result(r)
    click.echo(f"regenerated {repo} from {manifest}")


COMMANDS = {"export": export_command, "regenerate": regenerate_command}
