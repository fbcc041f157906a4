"""The model card: a flat ``str -> str`` map that travels with every model.

It is written into the checkpoint, into each ONNX graph's ``metadata_props`` and into
each ``config.pbtxt`` as ``parameters``, so a client learns everything it needs from
the file or from the server::

    card = ModelCard.from_dict(props)          # validates; raises CardError
    card.family, card.latent_dim, card.input_shape
    card.metrics["test_mse"]                   # floats under "aeserve.metrics."
    props = card.to_dict()                     # flat str map again

Keys (all prefixed ``aeserve.``):

=====================  ======================================================
``format_version``     card format; this code reads version ``FORMAT_VERSION``
``family``             ae | dae | sparse | contractive | vae
``arch``               mlp | conv
``input_shape``        comma-separated dims without batch, e.g. ``1,28,28``
``latent_dim``         int
``likelihood``         bernoulli | gaussian
``dataset``            name of the training data, e.g. ``mnist``
``name``               model name in a repository (set at export)
``hparams``            JSON object: architecture and family hyper-parameters
``train.*``            provenance: epochs, seed, batch_size, lr, classes, limit, world_size (DDP processes)
``metrics.*``          test metrics as floats (test_mse, test_psnr, test_elbo...)
``anomaly.*``          calibration: method, mean, std, quantiles (JSON), threshold,
                       threshold_quantile
``latent.*``           latent statistics for ``compress``: mean, std, min, max
                       (JSON lists of ``latent_dim`` floats)
``restore.task``       what a restoration model (family dae) restores: inpaint |
                       upscale | colorize; absent on a dae = denoise
``restore.fill``       inpaint: value of a missing pixel in the encoder's input
``restore.factors``    upscale: JSON list of upscaling factors, e.g. ``[2,4]``
``restore.low_shapes`` upscale: JSON list of the low-resolution input shapes
                       (C, H/f, W/f), one per factor
``task``               ``classifier`` on a ``<name>_classifier`` model (``x`` ->
                       ``probs``, column ``i`` = ``class_names[i]``); absent on
                       encoder/decoder pairs
``class_names``        JSON list of str: the name of label ``i`` is item ``i``
                       (set at training when the data names its classes, e.g.
                       PNG folders ``cat/``, ``dog/``; absent: labels are numbers)
``export_id``          set at export, the same in the encoder's and the decoder's
                       cards (a hash of both graphs): a pair whose ids differ comes
                       from two exports and is never served together
``prior``              the fitted latent prior: compact JSON of a Gaussian mixture
                       (weights, per-component class labels or null, base64 float32
                       means and packed Cholesky factors); see ``aeserve.prior``
``prior.sha256``       SHA-256 (hex) of the ``prior`` string; a mismatch is refused
``prior.calibration``  JSON ``{"nll": [mean, std], "log_mse": [mean, std], "n"}`` on
                       held-out training images, for ``anomaly_score("combined")``
=====================  ======================================================
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping, overload

from .errors import CardError

PREFIX = "aeserve."
FORMAT_VERSION = "1"
FAMILIES = ("ae", "dae", "sparse", "contractive", "vae")
ARCHS = ("mlp", "conv")
LIKELIHOODS = ("bernoulli", "gaussian")
EXPORT_ID = "export_id"   # key (without PREFIX) of the id shared by the two graphs of one export
DEFAULT_SIGMA = 0.1  # gaussian likelihood std when hparams do not record one

_CORE = ("format_version", "family", "arch", "input_shape", "latent_dim", "likelihood", "dataset")


@dataclass(frozen=True)
class ModelCard:
    """Typed view of a model card. ``extra`` holds every other ``aeserve.*`` key, as strings."""

    family: str
    arch: str
    input_shape: tuple[int, ...]
    latent_dim: int
    likelihood: str
    dataset: str
    extra: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise CardError(f"unknown family {self.family!r} in model card; expected one of {', '.join(FAMILIES)}")
        if self.arch not in ARCHS:
            raise CardError(f"unknown arch {self.arch!r} in model card; expected one of {', '.join(ARCHS)}")
        if self.likelihood not in LIKELIHOODS:
            raise CardError(f"unknown likelihood {self.likelihood!r}; expected one of {', '.join(LIKELIHOODS)}")
        if not self.input_shape or any(d < 1 for d in self.input_shape):
            raise CardError(f"input_shape must be positive dims, got {self.input_shape}")
        if self.latent_dim < 1:
            raise CardError(f"latent_dim must be >= 1, got {self.latent_dim}")
        for k, v in self.extra.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise CardError(f"model card entries must be strings, got {k!r}: {v!r}")

    # ---- typed accessors -------------------------------------------------------------
    @property
    def is_vae(self) -> bool:
        return self.family == "vae"

    @property
    def name(self) -> str | None:
        return self.extra.get("name")

    @property
    def export_id(self) -> str | None:
        """Identity of the export that wrote this model's encoder and decoder (None before export)."""
        return self.extra.get(EXPORT_ID)

    @property
    def hparams(self) -> dict[str, Any]:
        return self.get_json("hparams", {})

    @property
    def sigma(self) -> float:
        """The gaussian likelihood's std: ``hparams["sigma"]``, else ``DEFAULT_SIGMA``."""
        return float(self.hparams.get("sigma", DEFAULT_SIGMA))

    @property
    def metrics(self) -> dict[str, float]:
        return self._floats("metrics.")

    @property
    def train(self) -> dict[str, str]:
        return {k[len("train."):]: v for k, v in self.extra.items() if k.startswith("train.")}

    @property
    def class_names(self) -> tuple[str, ...] | None:
        """Names of the training labels (``class_names[label]``), or None when the data had none.

        Raises CardError when ``aeserve.class_names`` is not a JSON list of strings.
        """
        names = self.get_json("class_names")
        if names is None:
            return None
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise CardError(f"card key aeserve.class_names must be a JSON list of strings, got {self.extra['class_names'][:60]!r}")
        return tuple(names)

    @property
    def anomaly(self) -> dict[str, str]:
        return {k[len("anomaly."):]: v for k, v in self.extra.items() if k.startswith("anomaly.")}

    @property
    def restores(self) -> str | None:
        """What this model restores: ``restore.task`` (inpaint|upscale|colorize), "denoise"
        for a dae without that key, None for other families."""
        task = self.extra.get("restore.task")
        if task is None and self.family == "dae":
            return "denoise"
        return task

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.extra.get(key, default)

    @overload
    def get_float(self, key: str, default: float) -> float: ...

    @overload
    def get_float(self, key: str, default: None = None) -> float | None: ...

    def get_float(self, key: str, default: float | None = None) -> float | None:
        raw = self.extra.get(key)
        if raw is None:
            return default
        try:
            return float(raw)
        except ValueError:
            raise CardError(f"card key aeserve.{key} must be a number, got {raw!r}") from None

    def get_json(self, key: str, default: Any = None) -> Any:
        raw = self.extra.get(key)
        if raw is None:
            return default
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            raise CardError(f"card key aeserve.{key} must be JSON, got {raw[:60]!r}") from None

    def _floats(self, prefix: str) -> dict[str, float]:
        return {k[len(prefix):]: self.get_float(k) for k in self.extra if k.startswith(prefix)}  # type: ignore[misc]

    # ---- derivation ------------------------------------------------------------------
    def with_extra(self, **entries: Any) -> "ModelCard":
        """A copy with extra keys added/replaced. Values are stringified (lists/dicts as JSON,
        floats with full precision); a value of None removes the key. Use ``__`` for ``.``
        in keyword names, or pass a dict via ``**{"metrics.test_mse": 0.01}``."""
        extra = dict(self.extra)
        for key, value in entries.items():
            key = key.replace("__", ".")
            if value is None:
                extra.pop(key, None)
            else:
                extra[key] = encode_value(value)
        return ModelCard(self.family, self.arch, self.input_shape, self.latent_dim,
                         self.likelihood, self.dataset, extra)

    # ---- flat map --------------------------------------------------------------------
    def to_dict(self) -> dict[str, str]:
        """The flat ``aeserve.*`` string map, as stored in ONNX metadata and config.pbtxt."""
        out = {
            PREFIX + "format_version": FORMAT_VERSION,
            PREFIX + "family": self.family,
            PREFIX + "arch": self.arch,
            PREFIX + "input_shape": ",".join(str(d) for d in self.input_shape),
            PREFIX + "latent_dim": str(self.latent_dim),
            PREFIX + "likelihood": self.likelihood,
            PREFIX + "dataset": self.dataset,
        }
        out.update({PREFIX + k: v for k, v in sorted(self.extra.items())})
        return out

    @classmethod
    def from_dict(cls, props: Mapping[str, str]) -> "ModelCard":
        """Parse a flat map (keys with or without non-aeserve entries mixed in).

        Raises CardError if a core key is missing, the format version is not
        ``FORMAT_VERSION``, or a value is malformed.
        """
        own = {k[len(PREFIX):]: str(v) for k, v in props.items() if k.startswith(PREFIX)}
        missing = [k for k in _CORE if k not in own]
        if missing:
            raise CardError(
                "not an aeserve model card: missing " + ", ".join(PREFIX + k for k in missing)
            )
        version = own.pop("format_version")
        if version != FORMAT_VERSION:
            raise CardError(
                f"model card format_version {version!r} is not understood by this aeserve "
                f"(reads {FORMAT_VERSION!r}); upgrade aeserve or re-export the model"
            )
        try:
            shape = tuple(int(d) for d in own.pop("input_shape").split(","))
            latent = int(own.pop("latent_dim"))
        except ValueError as e:
            raise CardError(f"malformed input_shape or latent_dim in model card: {e}") from e
        return cls(
            family=own.pop("family"),
            arch=own.pop("arch"),
            input_shape=shape,
            latent_dim=latent,
            likelihood=own.pop("likelihood"),
            dataset=own.pop("dataset"),
            extra=own,
        )


def encode_value(value: Any) -> str:
    """Stringify a card value: str as is, bool as ``true``/``false``, int via str, float via
    repr (full precision), lists/tuples/dicts as compact JSON, numpy/torch arrays and
    scalars via ``tolist()``. Raises CardError for anything else."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(float(value))
    if isinstance(value, int):
        return str(value)
    if hasattr(value, "tolist"):  # numpy / torch: arrays become lists, scalars Python numbers
        return encode_value(value.tolist())
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, separators=(",", ":"))
    raise CardError(f"cannot store {type(value).__name__} in a model card")
