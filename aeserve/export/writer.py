"""Atomic, versioned writes into a Triton model repository.

    root = check_repository_path("model_repository")           # RepositoryError if a file
    version, paths = write_models(root, {
        "mnist_vae_encoder": (config_text, onnx_bytes),
        "mnist_vae_decoder": (config_text, onnx_bytes),
    })                                                          # version = max existing + 1

Everything is first written (and fsynced) to a staging directory, then moved into place
by renames. The staging directory is ``.<repo>.aeserve-tmp-<pid>-*`` next to the
repository root (a hidden directory *inside* the root would be polled by a running Triton
as a broken model, and a server started with ``--exit-on-error=true`` refuses to start
next to one), or ``.aeserve-tmp-<pid>-*`` inside the root only when the parent is on
another filesystem or not writable (the rename must stay atomic). A Triton model that is
new is renamed in whole; for an existing one the new version directory is renamed in
and ``config.pbtxt`` is atomically replaced. Version directories go in before any
config changes. SIGINT/SIGTERM are held during the few renames of the commit and a
failing rename rolls back the ones done, so a crash or Ctrl-C leaves the repository
as it was (a hard kill can at worst leave an orphan staging directory, which is
hidden, never read by ``Repository``, and removed by the next write). Nothing is ever overwritten:
an existing version directory is never replaced. Raises RepositoryError (path not a
directory, version already present) or ExportError (an OS error while writing).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import threading
from pathlib import Path
from typing import Iterator, Mapping

from ..errors import ExportError, RepositoryError
from ..repository import CONFIG_FILENAME, MODEL_FILENAME

TMP_PREFIX = ".aeserve-tmp-"   # inside the root; next to it: ".<root name>" + TMP_PREFIX


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


def write_models(root: str | os.PathLike[str], files: Mapping[str, tuple[str, bytes]],
                 version: int | None = None) -> tuple[int, dict[str, Path]]:
    """Write ``{triton_name: (config_text, onnx_bytes)}`` as one new version of each.

    Returns ``(version, {triton_name: path of the written model.onnx})``.
    """
    root = check_repository_path(root)
    names = list(files)
    if version is None:
        version = next_version(root, names)
    elif not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise RepositoryError(f"version must be an integer >= 1, got {version!r}")
    taken = [n for n in names if version in existing_versions(root / n)]
    if taken:
        raise RepositoryError(f"version {version} already exists for {taken} in {root}; export never "
                              "overwrites a version (omit the version to get the next one)")
    created = not root.exists()
    try:
        root.mkdir(parents=True, exist_ok=True)
        remove_stale_temp_dirs(root)
        tmp = make_staging_dir(root)
    except OSError as e:
        raise ExportError(f"cannot write to model repository {root}: {e}") from e
    ok = False
    try:
        for name, (config, model) in files.items():
            (tmp / name / str(version)).mkdir(parents=True)
            _write_file(tmp / name / str(version) / MODEL_FILENAME, model)
            _write_file(tmp / name / CONFIG_FILENAME, config.encode())
        with signals_held():
            _commit(root, tmp, names, version)
        ok = True
    except OSError as e:
        raise ExportError(f"writing to model repository {root} failed, nothing was changed: {e}") from e
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if created and not ok:
            with contextlib.suppress(OSError):
                root.rmdir()  # only if still empty
    return version, {n: root / n / str(version) / MODEL_FILENAME for n in names}


def _commit(root: Path, tmp: Path, names: list[str], version: int) -> None:
    """Move the staged models into place; on any OSError undo what was moved and re-raise."""
    undo: list = []  # callables that reverse each completed step
    try:
        for name in names:  # version directories (or whole new model dirs) first
            dest, staged = root / name, tmp / name
            if dest.exists():
                os.rename(staged / str(version), dest / str(version))
                undo.append(lambda a=dest / str(version), b=staged / str(version): os.rename(a, b))
            else:
                os.rename(staged, dest)
                undo.append(lambda a=dest, b=staged: os.rename(a, b))
        for name in names:  # then the configs of models that already existed
            staged = tmp / name / CONFIG_FILENAME
            if not staged.exists():
                continue  # the whole model dir (config included) was renamed in above
            dest = root / name / CONFIG_FILENAME
            if dest.exists():
                backup = tmp / name / (CONFIG_FILENAME + ".old")
                shutil.copy2(dest, backup)
                _fsync(backup)
                os.replace(staged, dest)
                undo.append(lambda a=backup, b=dest: os.replace(a, b))
            else:
                os.replace(staged, dest)
                undo.append(lambda a=dest: os.remove(a))
        _fsync_dir(root)
    except OSError:
        for step in reversed(undo):
            with contextlib.suppress(OSError):
                step()
        raise


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _fsync(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _staging_places(root: Path) -> list[tuple[Path, str]]:
    """(directory, name prefix) where staging directories for ``root`` may live, preferred first."""
    parent = root.absolute().parent
    return [(parent, f".{root.absolute().name}{TMP_PREFIX}"), (root, TMP_PREFIX)]


def make_staging_dir(root: Path, tag: str = "") -> Path:
    """A fresh staging directory on ``root``'s filesystem (next to it if possible, else inside)."""
    (parent, prefix), (inside, inside_prefix) = _staging_places(root)
    try:
        usable = os.stat(parent).st_dev == os.stat(root).st_dev and os.access(parent, os.W_OK | os.X_OK)
    except OSError:
        usable = False
    where, prefix = (parent, prefix) if usable else (inside, inside_prefix)
    return Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-{tag}", dir=where))


def temp_dirs(root: Path) -> list[Path]:
    """Staging directories that belong to ``root`` (ours and those left by dead writers)."""
    found: list[Path] = []
    for where, prefix in _staging_places(Path(root)):
        if where.is_dir():
            found.extend(sorted(where.glob(prefix + "*")))
    return found


def remove_stale_temp_dirs(root: Path) -> list[Path]:
    """Delete staging dirs of ``root`` left by writers that died (their pid is gone). Returns them."""
    removed = []
    for p in temp_dirs(root):
        try:
            pid = int(p.name.split(TMP_PREFIX, 1)[1].split("-", 1)[0])
        except (IndexError, ValueError):
            continue
        if pid != os.getpid() and not _alive(pid):
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Defer SIGINT/SIGTERM (main thread only) until the block ends."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    sigs = {signal.SIGINT, signal.SIGTERM}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, sigs)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
