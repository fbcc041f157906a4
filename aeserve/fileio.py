"""Atomic file writes: readers see the old file or the new one, never half of one.

    write_bytes_atomic("scores.csv", b"index,score\\n...")   # -> Path("scores.csv")

The data goes to a uniquely named temp file in the target's directory (created with mode
0666 minus the umask, like ``open(path, "w")``), is flushed and fsynced, then renamed
over the target with ``os.replace``. On any failure the temp file is removed.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from .errors import DataError

__all__ = ["write_bytes_atomic"]


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically, creating parent directories.

    Returns the Path. Raises DataError (with the OS reason) if it cannot be written.
    """
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    tmp = directory / f".tmp-{uuid.uuid4().hex}{path.suffix}"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            if tmp.exists():
                tmp.unlink()
            raise
    except OSError as e:
        raise DataError(f"cannot write {path}: {e.strerror or e}") from e
    return path
