"""The one way aeserve draws progress bars: tqdm on stderr, the same settings everywhere.

    bar = progress_bar(total=5000, desc="encode", unit="img")   # bar.update(k); bar.close()
    for c in progress_bar(classes, desc="one-class", unit="model", enabled=verbose): ...
    update, close = client_progress("encode", 5000)             # Client's (done, total) callback

Bars open with their total (their first line is ``desc: 0%| | 0/total``), redraw at most
twice a second on a terminal and every 5 s into a log file, and ``enabled=False`` gives
a silent bar with the same interface.
"""

from __future__ import annotations

import sys
from typing import Any, Callable, Iterable

__all__ = ["progress_bar", "client_progress"]


def progress_bar(iterable: Iterable[Any] | None = None, *, total: int | None = None, desc: str = "",
                 unit: str = "it", enabled: bool = True, leave: bool = False) -> Any:
    """A ``tqdm`` bar over ``iterable`` (or of ``total`` steps) on stderr; silent if not ``enabled``."""
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True, leave=leave,
                disable=not enabled, mininterval=0.5 if sys.stderr.isatty() else 5.0)


def client_progress(desc: str, total: int) -> tuple[Callable[[int, int], None], Callable[[], None]]:
    """A ``(progress, close)`` pair for the Client: ``progress(done, total)`` moves a bar of
    ``total`` images to ``done``; ``close()`` removes it."""
    bar = progress_bar(total=total, desc=desc, unit="img")

    def update(done: int, total: int) -> None:
        if bar.total != total:
            bar.total = total
        bar.update(done - bar.n)

    return update, bar.close
