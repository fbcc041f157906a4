"""Reading a Triton model repository (no torch needed).

Layout (README, "Shipped models" and "Serving")::

    model_repository/
      mnist_vae_encoder/config.pbtxt
      mnist_vae_encoder/1/model.onnx
      mnist_vae_decoder/...

A *model* in aeserve terms (``mnist_vae``) is the pair ``<name>_encoder`` /
``<name>_decoder``. Usage::

    repo = Repository("model_repository")       # RepositoryError if not a directory
    repo.models()                               # ["mnist_ae2", "mnist_vae", ...]
    m = repo.model("mnist_vae")                 # ModelNotFoundError if absent
    m.card, m.versions, m.encoder_path(), m.decoder_config.max_batch_size
    repo.classifiers()                          # ["mnist_vae"]: <name>_classifier models (x -> probs)
    k = repo.classifier("mnist_vae")            # RepositoryClassifier: k.card, k.path(), k.max_batch_size

Opening a repository first completes an export commit that a killed writer left
half done (``aeserve.export.journal.recover``). A model's path without a version is the
version its ``config.pbtxt`` serves (``version_policy { specific }``, as exports
write it), else the latest one present.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from .card import ModelCard
from .errors import CardError, ModelNotFoundError, RepositoryError

ENCODER_SUFFIX = "_encoder"
DECODER_SUFFIX = "_decoder"
CLASSIFIER_SUFFIX = "_classifier"
MODEL_FILENAME = "model.onnx"
CONFIG_FILENAME = "config.pbtxt"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,99}$")
DEFAULT_REPOSITORY = "model_repository"


def default_repository() -> Path:
    """``$AESERVE_REPOSITORY``, else ``./model_repository`` if it exists, else the one
    shipped next to the installed package's source tree (a clone's ``model_repository/``)."""
    env = os.environ.get("AESERVE_REPOSITORY")
    if env:
        return Path(env)
    here = Path.cwd() / DEFAULT_REPOSITORY
    if here.is_dir():
        return here
    return Path(__file__).resolve().parent.parent / DEFAULT_REPOSITORY


def check_model_name(name: str) -> str:
    """Return ``name`` if it is a valid model name (letters, digits, ``_``, ``-``; no path
    separators or dots), else raise RepositoryError."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise RepositoryError(
            f"invalid model name {name!r}: use letters, digits, '_' and '-' (no '/', '.', or spaces), "
            "starting with a letter or digit, at most 100 characters"
        )
    return name


def parse_config(text: str, where: str = "config.pbtxt") -> model_config_pb2.ModelConfig:
    """Parse Triton ``config.pbtxt`` text into a ``ModelConfig``; RepositoryError if malformed."""
    try:
        return text_format.Parse(text, model_config_pb2.ModelConfig())
    except text_format.ParseError as e:
        raise RepositoryError(f"{where} is not a valid Triton ModelConfig: {e}") from e


def config_params(config: model_config_pb2.ModelConfig) -> dict[str, str]:
    """A config's ``parameters`` as a flat string map (the model card's entries)."""
    return {k: v.string_value for k, v in config.parameters.items()}


def card_from_config(config: model_config_pb2.ModelConfig) -> ModelCard:
    """The model card stored in a config's ``parameters``."""
    return ModelCard.from_dict(config_params(config))


def versions_of(model_dir: Path) -> list[int]:
    """Sorted numeric version directories that hold a model file."""
    if not model_dir.is_dir():
        return []
    return sorted(int(p.name) for p in model_dir.iterdir()
                  if p.name.isdigit() and (p / MODEL_FILENAME).is_file())


@dataclass(frozen=True)
class RepositoryModel:
    """One aeserve model: an encoder/decoder pair of Triton models in a repository."""

    name: str
    root: Path
    encoder_config: model_config_pb2.ModelConfig
    decoder_config: model_config_pb2.ModelConfig
    card: ModelCard
    versions: tuple[int, ...]

    @property
    def encoder_name(self) -> str:
        return self.name + ENCODER_SUFFIX

    @property
    def decoder_name(self) -> str:
        return self.name + DECODER_SUFFIX

    @property
    def max_batch_size(self) -> int:
        return min(self.encoder_config.max_batch_size, self.decoder_config.max_batch_size)

    def encoder_path(self, version: int | None = None) -> Path:
        return self._path(self.encoder_name, version)

    def decoder_path(self, version: int | None = None) -> Path:
        return self._path(self.decoder_name, version)

    def served_version(self, triton_name: str) -> int:
        """The version Triton serves for ``encoder_name``/``decoder_name``: the highest one its
        config names (``version_policy.specific``), else the latest version both parts have."""
        cfg = self.encoder_config if triton_name == self.encoder_name else self.decoder_config
        if cfg.version_policy.WhichOneof("policy_choice") == "specific" and cfg.version_policy.specific.versions:
            return max(cfg.version_policy.specific.versions)
        return self.versions[-1]

    def _path(self, triton_name: str, version: int | None) -> Path:
        v = self.served_version(triton_name) if version is None else version
        path = self.root / triton_name / str(v) / MODEL_FILENAME
        if not path.is_file():
            raise ModelNotFoundError(f"{triton_name} has no version {v} in {self.root} (versions: {list(self.versions)})")
        return path


@dataclass(frozen=True)
class RepositoryClassifier:
    """A ``<name>_classifier`` Triton model (``x`` -> ``probs``) made by ``aeserve finetune``."""

    name: str
    root: Path
    config: model_config_pb2.ModelConfig
    card: ModelCard
    versions: tuple[int, ...]

    @property
    def triton_name(self) -> str:
        return self.name + CLASSIFIER_SUFFIX

    @property
    def max_batch_size(self) -> int:
        return self.config.max_batch_size

    @property
    def served_version(self) -> int:
        """The version the config serves (``version_policy.specific``), else the latest present."""
        policy = self.config.version_policy
        if policy.WhichOneof("policy_choice") == "specific" and policy.specific.versions:
            return max(policy.specific.versions)
        return self.versions[-1]

    def path(self, version: int | None = None) -> Path:
        v = self.served_version if version is None else version
        path = self.root / self.triton_name / str(v) / MODEL_FILENAME
        if not path.is_file():
            raise ModelNotFoundError(f"{self.triton_name} has no version {v} in {self.root} "
                                     f"(versions: {list(self.versions)})")
        return path


class Repository:
    """A Triton model repository on disk, read-only view."""

    def __init__(self, root: str | os.PathLike[str] | None = None):
        self.root = Path(root) if root is not None else default_repository()
        if not self.root.exists():
            raise RepositoryError(f"model repository {self.root} does not exist; export a model "
                                  "with `aeserve export` or pass the repository path")
        if not self.root.is_dir():
            raise RepositoryError(f"model repository {self.root} is not a directory")
        from .export.journal import recover  # torch-free

        recover(self.root)

    def models(self) -> list[str]:
        """Names of the aeserve models (encoder/decoder pairs with a config) in the repository, sorted."""
        names = []
        for d in self.root.iterdir():
            if d.name.endswith(ENCODER_SUFFIX) and (d / CONFIG_FILENAME).is_file():
                base = d.name[: -len(ENCODER_SUFFIX)]
                if (self.root / (base + DECODER_SUFFIX) / CONFIG_FILENAME).is_file():
                    names.append(base)
        return sorted(names)    # by name, not directory: "a_b_encoder" sorts before "a_encoder"

    def model(self, name: str) -> RepositoryModel:
        """Load one model's configs and card. ModelNotFoundError if absent; CardError/RepositoryError if malformed."""
        check_model_name(name)
        enc_dir, dec_dir = self.root / (name + ENCODER_SUFFIX), self.root / (name + DECODER_SUFFIX)
        if not (enc_dir / CONFIG_FILENAME).is_file() or not (dec_dir / CONFIG_FILENAME).is_file():
            raise ModelNotFoundError(
                f"model {name!r} not found in {self.root}; available: {', '.join(self.models()) or 'none'}"
            )
        enc_cfg = parse_config((enc_dir / CONFIG_FILENAME).read_text(), str(enc_dir / CONFIG_FILENAME))
        dec_cfg = parse_config((dec_dir / CONFIG_FILENAME).read_text(), str(dec_dir / CONFIG_FILENAME))
        try:
            card = card_from_config(enc_cfg)
        except CardError as e:
            raise CardError(f"{enc_dir / CONFIG_FILENAME}: {e}") from e
        versions = tuple(sorted(set(versions_of(enc_dir)) & set(versions_of(dec_dir))))
        if not versions:
            raise RepositoryError(f"model {name!r} in {self.root} has no version with both encoder and decoder ONNX files")
        return RepositoryModel(name, self.root, enc_cfg, dec_cfg, card, versions)

    def classifiers(self) -> list[str]:
        """Names ``<name>`` of the ``<name>_classifier`` models (with a config) in the repository, sorted."""
        return sorted(d.name[: -len(CLASSIFIER_SUFFIX)] for d in self.root.iterdir()
                      if d.name.endswith(CLASSIFIER_SUFFIX) and (d / CONFIG_FILENAME).is_file())

    def classifier(self, name: str) -> RepositoryClassifier:
        """Load ``<name>_classifier``'s config and card. ModelNotFoundError if absent; CardError or
        RepositoryError if malformed or not a classifier."""
        check_model_name(name)
        d = self.root / (name + CLASSIFIER_SUFFIX)
        if not (d / CONFIG_FILENAME).is_file():
            raise ModelNotFoundError(f"classifier {name + CLASSIFIER_SUFFIX!r} not found in {self.root}; "
                                     f"available: {', '.join(c + CLASSIFIER_SUFFIX for c in self.classifiers()) or 'none'}"
                                     " (make one with `aeserve finetune`)")
        cfg = parse_config((d / CONFIG_FILENAME).read_text(), str(d / CONFIG_FILENAME))
        try:
            card = card_from_config(cfg)
        except CardError as e:
            raise CardError(f"{d / CONFIG_FILENAME}: {e}") from None
        if card.get("task") != "classifier":
            raise CardError(f"{d / CONFIG_FILENAME}: card has no aeserve.task = classifier")
        versions = tuple(versions_of(d))
        if not versions:
            raise RepositoryError(f"classifier {name!r} in {self.root} has no version with an ONNX file")
        return RepositoryClassifier(name, self.root, cfg, card, versions)
