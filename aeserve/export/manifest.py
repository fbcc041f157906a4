"""The export manifest: which checkpoint becomes which Triton models, and regeneration.

    entries = load_manifest("export/manifest.json")       # list[ManifestEntry]
    results = regenerate("export/manifest.json", "model_repository")

``export/manifest.json`` is a JSON list of objects::

    [{"checkpoint": "checkpoints/mnist_vae.pt",   # relative to the manifest's directory
      "name": "mnist_vae", "max_batch": 256, "kind": "gpu", "instances": 1,
      "preferred_batch_sizes": [64, 256], "queue_delay_us": 100, "version": 1}]

Optional keys: ``fp16`` (false), ``warmup`` (false). ``regenerate`` exports every entry
into a fresh directory next to ``repo`` and then swaps it in for ``repo`` (the old
directory is removed), so ``repo`` is either the old or the complete new repository.
Raises ConfigError (malformed manifest), and everything ``export_checkpoint`` raises.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, ExportError
from ..repository import DEFAULT_REPOSITORY
from .exporter import ExportResult, export_checkpoint
from .writer import TMP_PREFIX, check_repository_path, remove_stale_temp_dirs, signals_held

DEFAULT_MANIFEST = "export/manifest.json"
_REQUIRED = {"checkpoint": str, "name": str, "max_batch": int, "kind": str, "instances": int,
             "preferred_batch_sizes": list, "queue_delay_us": int, "version": int}
_OPTIONAL = {"fp16": bool, "warmup": bool}


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

    def export_options(self) -> dict:
        """Keyword arguments for ``export_model``/``export_checkpoint``."""
        return {"max_batch": self.max_batch, "kind": self.kind, "instances": self.instances,
                "preferred_batch_sizes": self.preferred_batch_sizes, "queue_delay_us": self.queue_delay_us,
                "fp16": self.fp16, "warmup": self.warmup, "version": self.version}


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
        if item["name"] in names:
            raise ConfigError(f"{where}: duplicate model name {item['name']!r}")
        names.add(item["name"])
        entries.append(ManifestEntry(
            checkpoint=(path.parent / item["checkpoint"]), name=item["name"], max_batch=item["max_batch"],
            kind=item["kind"], instances=item["instances"],
            preferred_batch_sizes=tuple(item["preferred_batch_sizes"]), queue_delay_us=item["queue_delay_us"],
            version=item["version"], fp16=item.get("fp16", False), warmup=item.get("warmup", False)))
    return entries


def regenerate(manifest: str | os.PathLike[str] = DEFAULT_MANIFEST,
               repo: str | os.PathLike[str] = DEFAULT_REPOSITORY) -> list[ExportResult]:
    """Rebuild ``repo`` from ``manifest``: export every entry into a fresh directory, then swap.

    Returns one ExportResult per entry (paths inside ``repo``). On any error ``repo`` is unchanged.
    """
    entries = load_manifest(manifest)
    root = check_repository_path(repo)
    parent = root.absolute().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temp_dirs(root)
        staging = Path(tempfile.mkdtemp(prefix=f".{root.absolute().name}{TMP_PREFIX}{os.getpid()}-regen-",
                                        dir=parent))
    except OSError as e:
        raise ExportError(f"cannot create a staging directory next to {root}: {e}") from e
    try:
        results = [export_checkpoint(e.checkpoint, staging, e.name, **e.export_options()) for e in entries]
        _swap_in(staging, root)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [dataclasses.replace(r, paths={k: root / p.relative_to(staging) for k, p in r.paths.items()})
            for r in results]


def _swap_in(staging: Path, root: Path) -> None:
    """Replace ``root`` by ``staging`` with two renames (signals held; the first is undone on failure)."""
    old = Path(str(staging) + "-old")
    with signals_held():
        try:
            if root.exists():
                os.rename(root, old)
            try:
                os.rename(staging, root)
            except OSError:
                if old.exists():
                    os.rename(old, root)
                raise
        except OSError as e:
            raise ExportError(f"cannot move the regenerated repository into {root}: {e}") from e
    shutil.rmtree(old, ignore_errors=True)
