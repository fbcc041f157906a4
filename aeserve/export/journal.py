"""Staging directories and the commit journal of a model repository (torch-free).

A change to a repository is staged in full, then published by a few renames. Before the
first rename the list of renames is written, fsynced, to ``commit.json`` in the staging
directory; after the last one the staging directory is removed. So a commit that was
interrupted by a kill, a crash or a power cut is completed by whoever opens the
repository next (an export, ``regenerate``, ``aeserve serve``, a Client)::

    tmp = make_staging_dir(root)                    # ".<root>.aeserve-tmp-<pid>-*" next to root
    ... write the new files under tmp ...
    commit(root, tmp, [(tmp / "m_encoder", root / "m_encoder"), ...])   # journal + renames
    recover(root)                                   # at open: finish commits of dead writers

A step is a rename of ``src`` to ``dst`` (``os.replace``: a file may replace a file,
which is kept next to ``src`` until the commit is over; directories go only where
nothing is). No step's ``src`` is another step's ``dst``, so
the steps already done are exactly those up to the last one whose ``src`` is gone.
Recovery rolls forward (the staged files are complete once the journal exists) and rolls
back the steps done if a rename fails; a failing rename in the committing process rolls
back too. SIGINT/SIGTERM are held during the renames (``signals_held``).

Staging directories live next to the root (``.<root name>.aeserve-tmp-<pid>-*``) or,
when the parent is on another file system or not writable, inside it
(``.aeserve-tmp-<pid>-*``); a running Triton never sees them as models. Those of dead
processes are removed, after their journal (if any) is replayed. Raises OSError only
from ``commit``; ``recover`` reports what it could not do through ``logging``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import tempfile
import threading
from pathlib import Path
from typing import Any, Iterator, Sequence

from ..errors import ExportError

TMP_PREFIX = ".aeserve-tmp-"   # inside the root; next to it: ".<root name>" + TMP_PREFIX
JOURNAL = "commit.json"
_FORMAT = "aeserve-commit-1"
_log = logging.getLogger(__name__)

Step = tuple[Path, Path]


# ---- staging directories -------------------------------------------------------------
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


@contextlib.contextmanager
def staged(root: Path, tag: str = "", *, recover_first: bool = False) -> Iterator[Path]:
    """A staging directory for one commit into ``root``, removed when the block ends.

    ``root`` is created if missing and removed again (if still empty) when the block fails;
    ``recover_first`` finishes dead writers' commits before staging. Raises ExportError
    when ``root`` or the staging directory cannot be created.
    """
    created = not root.exists()
    try:
        root.mkdir(parents=True, exist_ok=True)
        if recover_first:
            recover(root)
        staging = make_staging_dir(root, tag)
    except OSError as e:
        raise ExportError(f"cannot create a staging directory for model repository {root}: {e}") from e
    ok = False
    try:
        yield staging
        ok = True
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if created and not ok:
            with contextlib.suppress(OSError):
                root.rmdir()  # only if still empty


def temp_dirs(root: Path) -> list[Path]:
    """Staging directories that belong to ``root`` (ours and those left by dead writers)."""
    found: list[Path] = []
    for where, prefix in _staging_places(Path(root)):
        if where.is_dir():
            found.extend(sorted(p for p in where.glob(prefix + "*") if p.is_dir()))
    return found


def _owner(staging: Path) -> int | None:
    try:
        return int(staging.name.split(TMP_PREFIX, 1)[1].split("-", 1)[0])
    except (IndexError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# ---- the journal ---------------------------------------------------------------------
def _base(root: Path) -> Path:
    return root.absolute().parent


def write_journal(root: Path, staging: Path, steps: Sequence[Step]) -> Path:
    """Write (fsynced, atomically) the journal of ``steps`` into ``staging``; returns its path."""
    base = _base(root)
    doc = {"format": _FORMAT, "root": os.path.relpath(root.absolute(), base),
           "steps": [[os.path.relpath(Path(s).absolute(), base), os.path.relpath(Path(d).absolute(), base)]
                     for s, d in steps]}
    tmp, path = staging / (JOURNAL + ".tmp"), staging / JOURNAL
    with open(tmp, "w") as f:
        json.dump(doc, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(staging)
    return path


def read_journal(root: Path, path: Path) -> list[Step] | None:
    """The steps of a journal, or None if it is unreadable or not ours."""
    try:
        doc = json.loads(path.read_text())
        base = _base(root)
        if doc.get("format") != _FORMAT:
            return None
        return [(base / s, base / d) for s, d in doc["steps"]]
    except (OSError, ValueError, TypeError, KeyError):
        return None


def steps_done(steps: Sequence[Step]) -> int:
    """How many leading steps are done: up to the last one whose source is gone."""
    for i in range(len(steps) - 1, -1, -1):
        if not os.path.lexists(steps[i][0]):
            return i + 1
    return 0


def _backup(src: Path) -> Path:
    """Where the file a step replaces is kept (a hard link made before the journal is written)."""
    return Path(str(src) + ".replaced")


def _undo(steps: Sequence[Step]) -> None:
    """Undo ``steps`` (done ones), last first: move each back and restore what it replaced."""
    for src, dst in reversed(steps):
        os.replace(dst, src)
        if os.path.lexists(_backup(src)):
            os.replace(_backup(src), dst)


def _apply(steps: Sequence[Step], start: int) -> None:
    """Do ``steps[start:]``; on an OSError undo every step done (from ``start`` on) and re-raise."""
    done = start
    try:
        for src, dst in steps[start:]:
            os.replace(src, dst)
            done += 1
        for d in sorted({Path(d).parent for _, d in steps} | {Path(s).parent for s, _ in steps}):
            fsync_dir(d)
    except OSError:
        with contextlib.suppress(OSError):
            _undo(steps[start:done])
        raise


def commit(root: Path, staging: Path, steps: Sequence[Step]) -> None:
    """Journal ``steps`` in ``staging``, then do them with signals held.

    On an OSError the renames done are undone, the journal is removed and the error
    re-raised: the repository is as it was. Once this returns, the change is published.
    """
    for src, dst in steps:
        if os.path.isfile(dst):
            try:
                os.link(dst, _backup(src))
            except OSError:  # no hard links on this file system
                shutil.copy2(dst, _backup(src))
    journal = write_journal(root, staging, steps)
    with signals_held():
        try:
            _apply(steps, 0)
        finally:
            journal.unlink()


def recover(root: Path) -> list[Path]:
    """Finish the commits of dead writers of ``root`` and remove their staging directories.

    Returns the staging directories removed. Never raises: a commit that cannot be
    completed now is rolled back if possible, and logged.
    """
    removed = []
    for staging in temp_dirs(Path(root)):
        pid = _owner(staging)
        if pid is None or pid == os.getpid() or _alive(pid):
            continue
        if _replay(Path(root), staging):
            shutil.rmtree(staging, ignore_errors=True)
            removed.append(staging)
    return removed


def _replay(root: Path, staging: Path) -> bool:
    """Complete (or undo) the journaled commit in ``staging``; False if it must stay for later."""
    journal = staging / JOURNAL
    if not journal.exists():
        return True
    try:
        lock = open(journal, "rb")
    except FileNotFoundError:
        return True           # another process finished it meanwhile
    except OSError as e:
        _log.warning("cannot open the commit journal %s: %s", journal, e)
        return False
    with lock:
        import fcntl

        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        if not journal.exists():
            return True
        steps = read_journal(root, journal)
        if steps is None:
            _log.warning("unreadable commit journal %s; left in place", journal)
            return False
        start = steps_done(steps)
        with signals_held():
            try:
                _apply(steps, start)
                _log.info("completed an interrupted commit to %s (%d of %d steps were done)",
                          root, start, len(steps))
            except OSError as e:
                _log.warning("cannot complete the interrupted commit to %s (%s); rolling it back", root, e)
                try:
                    _undo(steps[:start])
                except OSError as e2:
                    _log.warning("cannot roll back the interrupted commit to %s: %s", root, e2)
                    return False
            journal.unlink()
    return True


# ---- file system helpers -------------------------------------------------------------
def write_file(path: Path, data: bytes) -> None:
    """Write ``data`` to the new file ``path`` and fsync it."""
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def fsync_dir(path: Path) -> None:
    """fsync a directory (so renames in it are durable); errors are ignored."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Defer SIGINT/SIGTERM until the block ends; then act on them as before it.

    The Python-level handlers are swapped (a blocked signal mask would not do: the
    kernel delivers a process-directed signal to any thread that does not block it, such
    as gRPC's or ONNX Runtime's worker threads, and Python then runs the handler in the
    main thread all the same). Outside the main thread this holds nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    old: dict[signal.Signals, Any] = {}
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            old[sig] = signal.signal(sig, lambda signum, frame: pending.append(signum))
    except ValueError:  # not the main interpreter
        pass
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        for signum in dict.fromkeys(pending):
            handler = old.get(signal.Signals(signum))
            if callable(handler):
                handler(signum, None)
            elif handler in (signal.SIG_DFL, None):
                os.kill(os.getpid(), signum)
