"""Int8 export: ONNX Runtime quantization of an encoder/decoder pair, gated on quality.

    enc8, dec8, report = quantize_pair(enc, dec, card)     # QuantizationError if quality drops too far
    report.methods          # {"encoder": "static", "decoder": "dynamic"}
    report.drop_db          # PSNR(fp32 pair) - PSNR(int8 pair) on held-out images, in dB

In: the fp32 ``Graph`` pair that passed the parity gate and the exported card. Calibration
images (for static quantization) default to a seeded sample of ``CALIBRATION_IMAGES``
images from the training split of the card's dataset; the quality gate measures the
reconstruction PSNR (encode, then decode the code: ``mu`` for a VAE) of the fp32 pair and
of the int8 pair on ``GATE_IMAGES`` images of the test split (held-out training images
when the source has no test split). Out: two int8 ``Graph`` records and a
``QuantReport``. Raises QuantizationError when the PSNR drops by more than
``max_psnr_drop_db`` (``DEFAULT_MAX_PSNR_DROP_DB``), ExportError when ONNX Runtime cannot
quantize a graph or the card's dataset cannot be read, ConfigError for a bad argument.

Methods, per graph: ``static`` (weights and activations int8; activation ranges from the
calibration images; QOperator format) or ``dynamic`` (int8 weights, activation ranges
computed per call). The default is static for encoders (their convolutions run about x1.7
faster in int8 on one core) and dynamic for decoders (static quantization of a
ConvTranspose decoder ran slower than fp32, dynamic about x1.2 faster); measured with
``python benchmarks/quantize.py``. Either way the phase-space Convs that replaced a conv
decoder's ConvTranspose pair (``aeserve.export.phase_conv``) stay fp32, as the
ConvTranspose did: as dynamic ConvInteger they ran ~4.7x slower than fp32 (mnist_vae, one
thread, batch 256); with them fp32 the dynamic int8 decoder ran 1.2x as fast as the fp32 one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import onnx

from ..card import ModelCard
from ..contract import DECODER_INPUT, ENCODER_INPUT, encoder_outputs
from ..errors import AeserveError, ConfigError, ExportError, QuantizationError, SplitNotFoundError
from ..metrics import psnr
from ..ort_session import cpu_session
from .onnx_graphs import Graph
from .phase_conv import rewritten_nodes

METHODS = ("static", "dynamic")
DEFAULT_METHODS = {"encoder": "static", "decoder": "dynamic"}
DEFAULT_MAX_PSNR_DROP_DB = 0.25
CALIBRATION_IMAGES = 512
GATE_IMAGES = 1000
SEED = 0
_BATCH = 64


@dataclass(frozen=True)
class QuantReport:
    """What the int8 gate measured: methods per graph, PSNR of both pairs, the bound."""

    methods: dict[str, str]
    psnr_fp32: float
    psnr_int8: float
    images: int
    max_drop_db: float

    @property
    def drop_db(self) -> float:
        return self.psnr_fp32 - self.psnr_int8


def check_methods(methods: dict[str, str] | None) -> dict[str, str]:
    """``None`` -> the defaults; otherwise every role (encoder, decoder) must map to one of METHODS."""
    out = dict(DEFAULT_METHODS)
    for role, method in (methods or {}).items():
        if role not in out or method not in METHODS:
            raise ConfigError(f"quantization methods must map 'encoder'/'decoder' to one of {list(METHODS)}; "
                              f"got {role!r}: {method!r}")
        out[role] = method
    return out


def check_max_drop(max_psnr_drop_db: float) -> float:
    """The PSNR bound in dB: a finite number >= 0."""
    try:
        bound = float(max_psnr_drop_db)
    except (TypeError, ValueError):
        raise ConfigError(f"max PSNR drop must be a number of dB >= 0, got {max_psnr_drop_db!r}") from None
    if not np.isfinite(bound) or bound < 0:
        raise ConfigError(f"max PSNR drop must be a finite number of dB >= 0, got {max_psnr_drop_db!r}")
    return bound


def dataset_images(card: ModelCard) -> tuple[np.ndarray, np.ndarray]:
    """(calibration images from the training split, gate images) of the card's dataset; see module doc."""
    from ..data import load_dataset

    try:
        train = load_dataset(card.dataset, "train").x
        try:
            gate = load_dataset(card.dataset, "test", limit=GATE_IMAGES).x
        except SplitNotFoundError:
            gate = None
    except AeserveError as e:
        raise ExportError(f"int8 export needs calibration images from the model's dataset "
                          f"{card.dataset!r}, which cannot be read ({e}); pass calibration and gate images") from e
    rng = np.random.default_rng(SEED)
    order = rng.permutation(len(train))
    calibration = train[np.sort(order[:CALIBRATION_IMAGES])]
    if gate is None:
        gate = train[np.sort(order[CALIBRATION_IMAGES:CALIBRATION_IMAGES + GATE_IMAGES])]
    return calibration, gate


def _check_images(x: np.ndarray, card: ModelCard, what: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim < 2 or x.shape[1:] != tuple(card.input_shape) or len(x) < 1 or not np.issubdtype(x.dtype, np.floating):
        raise ConfigError(f"{what} images must be float (N, {', '.join(map(str, card.input_shape))}) with N >= 1; "
                          f"got {x.dtype} {x.shape}")
    return np.ascontiguousarray(x, dtype=np.float32)


def _run(model: bytes, name: str, x: np.ndarray, outputs: list[str] | None = None) -> list[np.ndarray]:
    sess = cpu_session(model)
    parts = [sess.run(outputs, {name: x[i:i + 256]}) for i in range(0, len(x), 256)]
    return [np.concatenate([p[k] for p in parts]) for k in range(len(parts[0]))]


def reconstruction_psnr(encoder: bytes, decoder: bytes, code: str, x: np.ndarray) -> float:
    """PSNR (dB, over the whole set) of ``decoder(encoder(x)[code])`` against ``x``."""
    z = _run(encoder, ENCODER_INPUT, x, [code])[0]
    return float(psnr(x, _run(decoder, DECODER_INPUT, z)[0]))


class _Reader:
    """ONNX Runtime's CalibrationDataReader protocol over one array, in batches."""

    def __init__(self, name: str, data: np.ndarray):
        self._batches = iter([{name: data[i:i + _BATCH]} for i in range(0, len(data), _BATCH)])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)


def quantize_graph(graph: Graph, method: str, calibration: np.ndarray | None = None) -> Graph:
    """One graph quantized to int8 (``calibration``: inputs of this graph, needed for ``static``).

    The card (``metadata_props``) and doc string are carried over. Raises ExportError.
    """
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static

    if method not in METHODS:
        raise ConfigError(f"quantization method must be one of {list(METHODS)}, got {method!r}")
    if method == "static" and calibration is None:
        raise ConfigError("static quantization needs calibration inputs")
    keep_fp32 = rewritten_nodes(graph.proto)
    with tempfile.TemporaryDirectory(prefix="aeserve-int8-") as tmp, _quiet():
        src, dst = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        src.write_bytes(graph.serialize())
        try:
            if method == "static":
                assert calibration is not None  # checked above
                quantize_static(str(src), str(dst), _Reader(graph.input_name, calibration),
                                quant_format=QuantFormat.QOperator, per_channel=True,
                                weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8,
                                nodes_to_exclude=keep_fp32)
            else:
                quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=True,
                                 nodes_to_exclude=keep_fp32)
            proto = onnx.load(str(dst))
        except Exception as e:  # noqa: BLE001 - ORT's quantizer raises many types
            raise ExportError(f"ONNX Runtime could not quantize the {graph.role} ({method}): "
                              f"{type(e).__name__}: {e}") from e
    del proto.metadata_props[:]
    proto.metadata_props.extend(graph.proto.metadata_props)
    proto.doc_string = graph.proto.doc_string
    return dataclasses.replace(graph, proto=proto)


def quantize_pair(encoder: Graph, decoder: Graph, card: ModelCard, *, calibration: np.ndarray | None = None,
                  gate_images: np.ndarray | None = None, max_psnr_drop_db: float = DEFAULT_MAX_PSNR_DROP_DB,
                  methods: dict[str, str] | None = None) -> tuple[Graph, Graph, QuantReport]:
    """Quantize both graphs and gate the pair on reconstruction PSNR (see module doc)."""
    chosen = check_methods(methods)
    bound = check_max_drop(max_psnr_drop_db)
    if calibration is None or gate_images is None:
        default_cal, default_gate = dataset_images(card)
        calibration = default_cal if calibration is None else calibration
        gate_images = default_gate if gate_images is None else gate_images
    calibration = _check_images(calibration, card, "calibration")
    gate_images = _check_images(gate_images, card, "gate")
    code = encoder_outputs(card)[0]                # mu (VAE) or z
    enc_fp32, dec_fp32 = encoder.serialize(), decoder.serialize()
    enc8 = quantize_graph(encoder, chosen["encoder"], calibration)
    dec_cal = _run(enc_fp32, encoder.input_name, calibration, [code])[0] if chosen["decoder"] == "static" else None
    dec8 = quantize_graph(decoder, chosen["decoder"], dec_cal)
    try:
        before = reconstruction_psnr(enc_fp32, dec_fp32, code, gate_images)
        after = reconstruction_psnr(enc8.serialize(), dec8.serialize(), code, gate_images)
    except Exception as e:  # noqa: BLE001 - ORT raises its own types
        raise ExportError(f"ONNX Runtime failed to run the int8 graphs: {type(e).__name__}: {e}") from e
    report = QuantReport(chosen, before, after, len(gate_images), bound)
    if not np.isfinite(after) or report.drop_db > bound:
        raise QuantizationError(
            f"int8 export refused: reconstruction PSNR drops from {before:.3f} dB (fp32) to {after:.3f} dB "
            f"(int8, encoder {chosen['encoder']}, decoder {chosen['decoder']}) on {len(gate_images)} images, "
            f"a drop of {report.drop_db:.3f} dB; the bound is {bound:g} dB. Export fp32, raise the bound, "
            "or try other quantization methods")
    return enc8, dec8, report


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Keep ONNX Runtime's quantizer quiet: it logs advice through the root logger, which
    would also install a stderr handler (``logging.basicConfig``) in a process without one.
    A NullHandler stands in while it runs; the root logger's level and handlers are restored."""
    root = logging.getLogger()
    level, stand_in = root.level, logging.NullHandler()
    root.addHandler(stand_in)
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.removeHandler(stand_in)
        root.setLevel(level)
