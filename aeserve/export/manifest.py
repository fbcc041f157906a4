"""The export manifest: which checkpoint becomes which Triton models, and regeneration.

    entries = load_manifest("export/manifest.json")       # list[ManifestEntry]
    results = regenerate("export/manifest.json", "model_repository")

``export/manifest.json`` is a JSON list of objects::

    [{"checkpoint": "checkpoints/mnist_vae.pt",   # relative to the manifest's directory
      "name": "mnist_vae", "max_batch": 256, "kind": "gpu", "instances": 1,
      "preferred_batch_sizes": [64, 256], "queue_delay_us": 100, "version": 1}]

Optional keys: ``fp16`` (false), ``warmup`` (false), ``prior`` (a JSON file of card entries
written by ``aeserve fit-prior --out``, relative to the manifest; they are added to the
exported card, so the fitted prior ships without refitting), ``classifier`` (false; true for a
checkpoint from ``aeserve finetune``, exported as ``<name>_classifier`` next to ``<name>``).
``regenerate`` exports every entry
into a staging directory next to ``repo``, then replaces the Triton models the manifest
owns (``<name>_encoder``, ``<name>_decoder``) in one journaled commit (see
``journal``): a kill at any point is completed by the next open, and every other model
and file in ``repo`` is left alone. The output is byte-identical wherever it runs (the
graphs carry no paths of the exporting machine). Raises ConfigError (malformed
manifest), and everything ``export_checkpoint`` raises.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, ExportError
from ..repository import CLASSIFIER_SUFFIX, DECODER_SUFFIX, DEFAULT_REPOSITORY, ENCODER_SUFFIX
from .exporter import ExportResult, export_checkpoint
from .journal import Step, commit, staged
from .writer import check_repository_path

DEFAULT_MANIFEST = "export/manifest.json"
_REQUIRED = {"checkpoint": str, "name": str, "max_batch": int, "kind": str, "instances": int,
             "preferred_batch_sizes": list, "queue_delay_us": int, "version": int}
_OPTIONAL = {"fp16": bool, "warmup": bool, "prior": str, "classifier": bool}


@dataclass(frozen=True)
class ManifestEntry:
    checkpoint: Path            # resolved against the manifest's directory
    name: str
    max_batch: int
    kind: str
    instances: int
    preferred_batch_sizes: tuple[int, ...]
    queue_delay_us: int
    version: int
    fp16: bool = False
    warmup: bool = False
    prior: Path | None = None   # resolved against the manifest's directory
    classifier: bool = False    # the checkpoint is a finetune classifier: <name>_classifier

    def export_options(self) -> dict:
        """Keyword arguments for ``export_model``/``export_checkpoint`` (reads the prior file)."""
        return {"max_batch": self.max_batch, "kind": self.kind, "instances": self.instances,
                "preferred_batch_sizes": self.preferred_batch_sizes, "queue_delay_us": self.queue_delay_us,
                "fp16": self.fp16, "warmup": self.warmup, "version": self.version,
                "card_extra": None if self.prior is None else read_card_entries(self.prior)}


def read_card_entries(path: str | os.PathLike[str]) -> dict[str, str]:
    """A JSON object of card entries (``{"prior": ..., "prior.sha256": ...}``); ConfigError if unreadable."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"card entries file {path} does not exist; write it with `aeserve fit-prior --out`") \
            from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"card entries file {path} is not readable JSON: {e}") from None
    if not isinstance(raw, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in raw.items()):
        raise ConfigError(f"card entries file {path} must be a JSON object of strings")
    return raw


def load_manifest(path: str | os.PathLike[str] = DEFAULT_MANIFEST) -> list[ManifestEntry]:
    """Parse and validate the manifest. ConfigError says which entry/key is wrong and what was expected."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"export manifest {path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"export manifest {path} is not readable JSON: {e}") from e
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"export manifest {path} must be a non-empty JSON list of model entries")
    entries, names = [], set()
    for i, item in enumerate(raw):
        where = f"{path} entry {i}"
        if not isinstance(item, dict):
            raise ConfigError(f"{where} must be an object, got {type(item).__name__}")
        missing = sorted(set(_REQUIRED) - set(item))
        unknown = sorted(set(item) - set(_REQUIRED) - set(_OPTIONAL))
        if missing or unknown:
            raise ConfigError(f"{where}: missing keys {missing}, unknown keys {unknown}; expected "
                              f"{sorted(_REQUIRED)} and optionally {sorted(_OPTIONAL)}")
        for key, typ in {**_REQUIRED, **_OPTIONAL}.items():
            if key in item and (not isinstance(item[key], typ) or (typ is int and isinstance(item[key], bool))):
                raise ConfigError(f"{where}: {key} must be {typ.__name__}, got {item[key]!r}")
        if (item["name"], item.get("classifier", False)) in names:  # <name>_classifier may sit next to <name>
            raise ConfigError(f"{where}: duplicate model name {item['name']!r}")
        names.add((item["name"], item.get("classifier", False)))
        entries.append(ManifestEntry(
            checkpoint=(path.parent / item["checkpoint"]), name=item["name"], max_batch=item["max_batch"],
            kind=item["kind"], instances=item["instances"],
            preferred_batch_sizes=tuple(item["preferred_batch_sizes"]), queue_delay_us=item["queue_delay_us"],
            version=item["version"], fp16=item.get("fp16", False), warmup=item.get("warmup", False),
            prior=None if "prior" not in item else path.parent / item["prior"],
            classifier=item.get("classifier", False)))
    return entries


def regenerate(manifest: str | os.PathLike[str] = DEFAULT_MANIFEST,
               repo: str | os.PathLike[str] = DEFAULT_REPOSITORY) -> list[ExportResult]:
    """Rebuild the models ``manifest`` lists in ``repo``: export each into staging, then swap them in.

    Returns one ExportResult per entry (paths inside ``repo``). On any error ``repo`` is
    unchanged; models and files the manifest does not name are never touched.
    """
    entries = load_manifest(manifest)
    root = check_repository_path(repo)
    with staged(root, "regen-", recover_first=True) as staging:
        fresh, old = staging / "new", staging / "old"
        try:
            results = [export_checkpoint(e.checkpoint, fresh, e.name, **e.export_options()) for e in entries]
            for entry, r in zip(entries, results):
                if entry.classifier != ("classifier" in r.paths):
                    raise ConfigError(f"{manifest}: entry {entry.name!r} says "
                                      f"classifier={str(entry.classifier).lower()}, but {entry.checkpoint} is "
                                      f"{'a' if 'classifier' in r.paths else 'not a'} finetune classifier")
            steps: list[Step] = []
            for triton_name in (e.name + suffix for e in entries
                                for suffix in ((CLASSIFIER_SUFFIX,) if e.classifier
                                               else (ENCODER_SUFFIX, DECODER_SUFFIX))):
                if os.path.lexists(root / triton_name):
                    steps.append((root / triton_name, old / triton_name))
                steps.append((fresh / triton_name, root / triton_name))
            old.mkdir()
            commit(root, staging, steps)
        except OSError as e:
            raise ExportError(f"cannot move the regenerated models into {root}: {e}") from e
    return [dataclasses.replace(r, paths={k: root / p.relative_to(fresh) for k, p in r.paths.items()})
            for r in results]
