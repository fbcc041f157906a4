"""Atomic, versioned writes into a Triton model repository.

    root = check_repository_path("model_repository")           # RepositoryError if a file
    version, paths = write_models(root, {
        "mnist_vae_encoder": (config_text, onnx_bytes),
        "mnist_vae_decoder": (config_text, onnx_bytes),
    })                                                          # version = max existing + 1

Everything is first written (and fsynced) to a staging directory (``journal``), then
published by renames recorded beforehand in a commit journal, so a commit cut short by
a kill is completed by the next open of the repository. A Triton model that is new is
renamed in whole; for an existing one the new version directory goes in first (inert:
each ``config.pbtxt`` names the one version it serves) and then ``config.pbtxt`` is
atomically replaced. Until both configs are replaced the encoder's and decoder's export
ids differ, and no aeserve runtime serves the pair. SIGINT/SIGTERM are held during the
renames and a failing rename rolls back the ones done. Nothing is ever overwritten: an
existing version directory is never replaced. Raises RepositoryError (path not a
directory, version already present) or ExportError (an OS error while writing).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

from ..errors import ExportError, RepositoryError
from ..repository import CONFIG_FILENAME, MODEL_FILENAME
from .journal import TMP_PREFIX, Step, commit, recover, staged, temp_dirs, write_file

__all__ = ["TMP_PREFIX", "check_repository_path", "existing_versions", "next_version", "reserve_version",
           "temp_dirs", "write_models"]


def check_repository_path(root: str | os.PathLike[str]) -> Path:
    """``root`` as a Path; RepositoryError if it exists but is not a directory (or has a file as parent)."""
    path = Path(root)
    for p in (path, *path.parents):
        if p.exists() and not p.is_dir():
            raise RepositoryError(f"model repository {path} cannot be used: {p} exists and is not a directory; "
                                  "expected a directory (or a path that does not exist yet)")
        if p.exists():
            break
    return path


def existing_versions(model_dir: Path) -> list[int]:
    """Every numeric sub-directory of ``model_dir`` (with or without a model file)."""
    if not model_dir.is_dir():
        return []
    return sorted(int(p.name) for p in model_dir.iterdir() if p.name.isdigit() and p.is_dir())


def next_version(root: Path, triton_names: list[str]) -> int:
    """One more than the highest version of any of ``triton_names`` (1 for new models)."""
    return 1 + max((v for n in triton_names for v in existing_versions(root / n)), default=0)


def reserve_version(root: Path, triton_names: list[str], version: int | None = None) -> int:
    """The version an export of ``triton_names`` into ``root`` will write: ``version`` checked,
    or the next free one (after finishing a commit a killed writer left). RepositoryError if
    ``version`` is not an integer >= 1 or already exists for one of the models."""
    if root.is_dir():
        recover(root)
    if version is None:
        return next_version(root, triton_names)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise RepositoryError(f"version must be an integer >= 1, got {version!r}")
    taken = [n for n in triton_names if version in existing_versions(root / n)]
    if taken:
        raise RepositoryError(f"version {version} already exists for {taken} in {root}; export never "
                              "overwrites a version (omit the version to get the next one)")
    return version


def write_models(root: str | os.PathLike[str], files: Mapping[str, tuple[str, bytes]],
                 version: int | None = None) -> tuple[int, dict[str, Path]]:
    """Write ``{triton_name: (config_text, onnx_bytes)}`` as one new version of each.

    Returns ``(version, {triton_name: path of the written model.onnx})``.
    """
    root = check_repository_path(root)
    names = list(files)
    version = reserve_version(root, names, version)
    with staged(root) as tmp:
        try:
            steps: list[Step] = []
            for name, (config, model) in files.items():
                (tmp / name / str(version)).mkdir(parents=True)
                write_file(tmp / name / str(version) / MODEL_FILENAME, model)
                write_file(tmp / name / CONFIG_FILENAME, config.encode())
                if (root / name).exists():  # version first (inert until the config names it), config last
                    steps.insert(0, (tmp / name / str(version), root / name / str(version)))
                    steps.append((tmp / name / CONFIG_FILENAME, root / name / CONFIG_FILENAME))
                else:
                    steps.append((tmp / name, root / name))
            commit(root, tmp, steps)
        except OSError as e:
            raise ExportError(f"writing to model repository {root} failed, nothing was changed: {e}") from e
    return version, {n: root / n / str(version) / MODEL_FILENAME for n in names}


