"""Work directories of running servers in the temp folder, and the removal of those left
behind by processes that died without cleaning up (SIGKILL, power loss).

    d = create_workdir()                 # /tmp/aeserve-serve-XXXX with owner.json (this pid)
    record(d, server_pid=4321, shm_prefix="aeserve_1234_ab12cd34_")
    remove_stale()                       # -> [dirs removed]; runs at every create_workdir()

``owner.json`` names the owning process and the server it started, each as (pid, kernel
start time) so that a reused pid is never mistaken for the owner. A directory is removed
only when neither process is alive; one without ``owner.json`` (being created right now,
or not ours) is left alone. Its shared-memory segments (``/dev/shm/<shm_prefix>*``) go
with it.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

from . import process as proc

PREFIX = "aeserve-serve-"
OWNER_FILE = "owner.json"
log = logging.getLogger(__name__)


def _me(pid: int) -> dict[str, int | None]:
    return {"pid": pid, "start": proc.start_time(pid)}


def create_workdir(root: str | os.PathLike[str] | None = None) -> Path:
    """A fresh work directory in ``root`` (default: the temp folder) owned by this process;
    stale ones of dead processes are removed first."""
    remove_stale(root)
    d = Path(tempfile.mkdtemp(prefix=PREFIX, dir=root))
    _write(d, {"owner": _me(os.getpid())})
    return d


def record(workdir: Path, *, server_pid: int, shm_prefix: str | None) -> None:
    """Add the server process (and its shared-memory prefix) to ``workdir``'s owner record."""
    info = read_owner(workdir) or {"owner": _me(os.getpid())}
    info["server"] = _me(server_pid)
    info["shm_prefix"] = shm_prefix
    _write(workdir, info)


def read_owner(workdir: Path) -> dict | None:
    """The owner record of ``workdir``; None if absent or unreadable."""
    try:
        info = json.loads((workdir / OWNER_FILE).read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def _write(workdir: Path, info: dict) -> None:
    tmp = workdir / (OWNER_FILE + ".tmp")
    tmp.write_text(json.dumps(info))
    os.replace(tmp, workdir / OWNER_FILE)


def _alive(entry: object) -> bool:
    if not isinstance(entry, dict) or not isinstance(entry.get("pid"), int):
        return False
    start = proc.start_time(entry["pid"])
    return start is not None and start == entry.get("start")


def remove_stale(root: str | os.PathLike[str] | None = None) -> list[Path]:
    """Remove the work directories in ``root`` whose owner and server are both dead; return them."""
    base = Path(root if root is not None else tempfile.gettempdir())
    removed = []
    for d in sorted(base.glob(PREFIX + "*")):
        info = read_owner(d) if d.is_dir() else None
        if info is None or _alive(info.get("owner")) or _alive(info.get("server")):
            continue
        shm = info.get("shm_prefix")
        if isinstance(shm, str) and shm.startswith("aeserve_"):
            proc.remove_shm(shm)
        shutil.rmtree(d, ignore_errors=True)
        log.info("removed %s, left behind by dead process %s", d, (info.get("owner") or {}).get("pid"))
        removed.append(d)
    return removed
