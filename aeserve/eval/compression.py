"""Compression: the model's bytes per image vs PSNR, next to PNG, WebP and JPEG (Pillow).

    from aeserve.eval.compression import compression, codec_points, rate_distortion_plot
    res = compression(client, x_test, plot="rd.png")       # {"model": {...}, "rate_distortion": [...]}

Every codec encodes each image on its own (one file per image, as a user would store
it) from the same 8-bit pixels (``round(255 x)``); the model's payload is one blob for
the whole set (one header), and also measured per single image. Lossless codecs have an
infinite PSNR. ``bits`` sweeps the latent quantization (``aeserve.compress``) for the
model's rate-distortion curve (``*`` marks ``compress.DEFAULT_BITS``, what ``Client.compress`` uses).
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from .. import metrics
from ..errors import InputError
from ..images import to_uint8

WEBP_QUALITIES = (0, 10, 25, 50, 75, 90)
JPEG_QUALITIES = (10, 25, 50, 75, 90)
MODEL_BITS = (2, 3, 4, 5, 6, 7, 8)


def _pil_image(img: np.ndarray):
    from PIL import Image

    if img.shape[0] == 1:
        return Image.fromarray(img[0], mode="L")
    if img.shape[0] == 3:
        return Image.fromarray(np.moveaxis(img, 0, -1), mode="RGB")
    raise InputError(f"codec comparison needs 1- or 3-channel images (C, H, W), got {img.shape}")


def _roundtrip(img: np.ndarray, fmt: str, options: dict[str, Any]) -> tuple[int, np.ndarray]:
    from PIL import Image

    buf = io.BytesIO()
    _pil_image(img).save(buf, format=fmt, **options)
    size = buf.tell()
    buf.seek(0)
    back = np.asarray(Image.open(buf).convert("L" if img.shape[0] == 1 else "RGB"))
    back = back[None] if back.ndim == 2 else np.moveaxis(back, -1, 0)
    return size, back


def codec_settings() -> list[tuple[str, str, str, dict[str, Any]]]:
    """``(codec, setting, PIL format, save options)`` for every point of the comparison."""
    rows: list[tuple[str, str, str, dict[str, Any]]] = [("png", "optimize", "PNG", {"optimize": True}),
            ("webp-lossless", "m6", "WEBP", {"lossless": True, "quality": 100, "method": 6})]
    rows += [("webp", f"q{q}", "WEBP", {"quality": q, "method": 6}) for q in WEBP_QUALITIES]
    rows += [("jpeg", f"q{q}", "JPEG", {"quality": q, "optimize": True}) for q in JPEG_QUALITIES]
    return rows


def codec_points(x: np.ndarray,
                 settings: Iterable[tuple[str, str, str, dict[str, Any]]] | None = None) -> list[dict[str, Any]]:
    """Bytes per image and PSNR (vs ``x``) of each Pillow codec setting on images ``x``."""
    u8 = to_uint8(x)
    ref = u8.astype(np.float32) / 255.0
    out = []
    for codec, setting, fmt, options in settings or codec_settings():
        sizes, backs = zip(*(_roundtrip(img, fmt, options) for img in u8))
        dec = np.stack(backs).astype(np.float32) / 255.0
        out.append({"codec": codec, "setting": setting, "bytes_per_image": float(np.mean(sizes)),
                    "psnr": metrics.psnr(ref, dec)})
    return out


def model_points(client: Any, x: np.ndarray, bits: Iterable[int] = MODEL_BITS) -> list[dict[str, Any]]:
    """The model's rate-distortion curve: one blob of quantized latents per ``bits`` setting."""
    from .. import compress

    z = client.encode(x)
    out = []
    for b in bits:
        blob = compress.encode_payload(z, model=client.model, version=client.version, card=client.card, bits=int(b))
        z_hat = compress.decode_payload(blob, model=client.model, version=client.version, card=client.card)
        out.append({"codec": "model", "setting": f"{b}bit" + ("*" if b == compress.DEFAULT_BITS else ""),
                    "bytes_per_image": len(blob) / len(x), "psnr": metrics.psnr(x, client.decode(z_hat))})
    return out


def compression(client: Any, x: np.ndarray, *, plot: str | os.PathLike[str] | None = None,
                single: int = 100) -> dict[str, Any]:
    """Model payload (``client.compress``) vs codecs on the same images; optional RD plot."""
    blob = client.compress(x)
    recon_psnr = metrics.psnr(x, client.reconstruct(x))
    model = {"bytes_per_image": len(blob) / len(x), "psnr": metrics.psnr(x, client.decompress(blob)),
             "psnr_reconstruct": recon_psnr, "blob_bytes": len(blob), "n": len(x)}
    m = min(single, len(x))
    model["bytes_single_image"] = float(np.mean([len(client.compress(x[i:i + 1])) for i in range(m)]))
    rows = model_points(client, x) + codec_points(x)
    out = {"model": model, "rate_distortion": rows}
    if plot is not None:
        out["plot"] = str(rate_distortion_plot(rows, plot, title=f"{client.model}: rate vs distortion",
                                               default=model))
    return out


def rate_distortion_plot(rows: list[dict[str, Any]], path: str | os.PathLike[str], *, title: str = "",
                         default: dict[str, Any] | None = None) -> Path:
    """PSNR (dB) vs bytes per image, one line per codec; lossless codecs drawn at the top
    edge with an arrow. Written atomically as PNG."""
    from ..plots import new_figure, save_figure

    finite = [r["psnr"] for r in rows if np.isfinite(r["psnr"])]
    top = (max(finite) if finite else 40.0) + 4.0
    fig = new_figure((6.4, 4.4))
    ax = fig.add_subplot(1, 1, 1)
    for codec in dict.fromkeys(r["codec"] for r in rows):
        pts = [r for r in rows if r["codec"] == codec]
        xs = [r["bytes_per_image"] for r in pts]
        if all(not np.isfinite(r["psnr"]) for r in pts):
            ax.scatter(xs, [top] * len(xs), marker="^", s=60, label=f"{codec} (lossless)")
            continue
        ax.plot(xs, [r["psnr"] for r in pts], marker="o", label=codec)
        for r in pts:
            ax.annotate(str(r["setting"]), (r["bytes_per_image"], r["psnr"]), fontsize=6,
                        textcoords="offset points", xytext=(3, 3))
    if default is not None:
        ax.scatter([default["bytes_per_image"]], [default["psnr"]], marker="*", s=160, color="black",
                   zorder=5, label="model (default)")
    ax.set_xscale("log")
    ax.set_xlabel("bytes per image (log scale)")
    ax.set_ylabel("PSNR (dB)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return save_figure(fig, path, dpi=120)
