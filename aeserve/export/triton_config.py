"""Triton ``config.pbtxt`` for one exported graph, built as a ``ModelConfig`` protobuf.

    settings = ServingSettings(max_batch=256, kind="gpu", instances=1)
    cfg = build_config("mnist_vae_encoder", graph, settings, card)
    text = config_text(cfg)            # protobuf text format: parses by construction

In: the Triton model name, the ``Graph`` (tensor names/shapes), the batching/placement
settings and the model card (stored as ``parameters``). Out: a
``tritonclient.grpc.model_config_pb2.ModelConfig``. ``ServingSettings`` raises
ConfigError on a bad value (max_batch < 1, unknown kind, instances < 1, preferred
batch sizes outside 1..max_batch, negative queue delay).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as pb

from ..card import ModelCard
from ..checks import check_int
from ..errors import ConfigError
from ..repository import MODEL_FILENAME

KINDS = {"gpu": pb.ModelInstanceGroup.KIND_GPU, "cpu": pb.ModelInstanceGroup.KIND_CPU}
BACKEND = "onnxruntime"


def default_preferred_batch_sizes(max_batch: int) -> tuple[int, ...]:
    """A quarter of ``max_batch`` and ``max_batch`` (e.g. 64, 256)."""
    return tuple(sorted({max(1, max_batch // 4), max_batch}))


@dataclass(frozen=True)
class ServingSettings:
    """Batching and placement for both graphs of a model; validated on construction."""

    max_batch: int = 256
    kind: str = "gpu"
    instances: int = 1
    preferred_batch_sizes: tuple[int, ...] | None = None
    queue_delay_us: int = 100
    warmup: bool = False
    resolved_preferred: tuple[int, ...] = field(init=False, default=())

    def __post_init__(self) -> None:
        check_int(self.max_batch, "max_batch", minimum=1, error=ConfigError)
        if self.kind not in KINDS:
            raise ConfigError(f"kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        check_int(self.instances, "instances", minimum=1, error=ConfigError)
        check_int(self.queue_delay_us, "queue_delay_us", minimum=0, error=ConfigError)
        pref = self.preferred_batch_sizes
        if pref is None or len(pref) == 0:
            resolved = default_preferred_batch_sizes(self.max_batch)
        else:
            bad = [p for p in pref if not _is_int(p) or not 1 <= p <= self.max_batch]
            if bad:
                raise ConfigError(f"preferred batch sizes must be integers in 1..max_batch={self.max_batch}, "
                                  f"got {list(pref)}")
            resolved = tuple(sorted(set(int(p) for p in pref)))
        object.__setattr__(self, "preferred_batch_sizes", None if pref is None else tuple(pref))
        object.__setattr__(self, "resolved_preferred", resolved)


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _tensor(msg, name: str, dims: Sequence[int]) -> None:
    msg.name = name
    msg.data_type = pb.TYPE_FP32
    msg.dims.extend(int(d) for d in dims)


def build_config(triton_name: str, graph, settings: ServingSettings, card: ModelCard,
                 version: int | None = None) -> pb.ModelConfig:
    """The ``ModelConfig`` for one graph (``graph``: an ``onnx_graphs.Graph`` or anything with
    ``input_name``, ``input_shape``, ``output_names``, ``output_shape``). ``version``: the one
    version this config serves (``version_policy { specific }``), so that a version directory
    is served only once its config, which carries the card, names it; None: Triton's default."""
    cfg = pb.ModelConfig(name=triton_name, backend=BACKEND, max_batch_size=settings.max_batch,
                         default_model_filename=MODEL_FILENAME)
    if version is not None:
        cfg.version_policy.specific.versions.append(int(version))
    _tensor(cfg.input.add(), graph.input_name, graph.input_shape)
    for out in graph.output_names:
        _tensor(cfg.output.add(), out, graph.output_shape)
    cfg.dynamic_batching.preferred_batch_size.extend(settings.resolved_preferred)
    cfg.dynamic_batching.max_queue_delay_microseconds = settings.queue_delay_us
    group = cfg.instance_group.add()
    group.count = settings.instances
    group.kind = KINDS[settings.kind]
    if settings.warmup:
        for n in sorted({1, settings.max_batch}):
            w = cfg.model_warmup.add()
            w.name = f"zeros_batch_{n}"
            w.batch_size = n
            inp = w.inputs[graph.input_name]
            inp.data_type = pb.TYPE_FP32
            inp.dims.extend(int(d) for d in graph.input_shape)
            inp.zero_data = True
    for key, value in sorted(card.to_dict().items()):
        cfg.parameters[key].string_value = value
    return cfg


def config_text(cfg: pb.ModelConfig) -> str:
    """Protobuf text format of ``cfg`` (what goes into ``config.pbtxt``)."""
    return text_format.MessageToString(cfg)
