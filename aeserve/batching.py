"""Split a request into chunks, run them with bounded concurrency, reassemble in order.

    with Batcher(max_in_flight=4) as b:
        for start, stop, result in b.imap(work, chunks(1000, 256)):   # in order, <= 4 in flight
            out[start:stop] = result

``work(start, stop)`` runs in a worker thread (the same few threads for the life of the
Batcher, so per-thread connections are reused). At most ``max_in_flight`` chunks are
submitted ahead of the one being consumed, so memory stays bounded however many chunks
there are. The first exception raised by a chunk is re-raised in the caller, and
chunks not yet started are cancelled.
"""

from __future__ import annotations

import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Iterable, Iterator, TypeVar

from .checks import check_int
from .errors import ClientClosedError, InputError

T = TypeVar("T")
Progress = Callable[[int, int], None]   # (items done, items total)


def chunks(n: int, size: int) -> list[tuple[int, int]]:
    """``[(0, size), (size, 2*size), ..., (k*size, n)]``; empty for n == 0."""
    if size < 1:
        raise InputError(f"chunk size must be >= 1, got {size}")
    return [(s, min(s + size, n)) for s in range(0, n, size)]


def check_max_in_flight(v: Any) -> int:
    return check_int(v, "max_in_flight", minimum=1)


class Batcher:
    """Ordered, bounded-concurrency map over chunks. Thread pool created lazily; ``close()`` it."""

    def __init__(self, max_in_flight: int = 4):
        self.max_in_flight = check_max_in_flight(max_in_flight)
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._closed = False

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._closed:
                raise ClientClosedError("this Batcher is closed (its Client was closed); no new threads are started")
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.max_in_flight, thread_name_prefix="aeserve")
            return self._pool

    def imap(self, work: Callable[[int, int], T], spans: Iterable[tuple[int, int]],
             progress: Progress | None = None, total: int | None = None) -> Iterator[tuple[int, int, T]]:
        """Yield ``(start, stop, work(start, stop))`` in the order of ``spans``."""
        spans = list(spans)
        total = total if total is not None else (spans[-1][1] if spans else 0)
        done = 0
        if self.max_in_flight == 1 or len(spans) == 1:
            for s, e in spans:
                r = work(s, e)
                done += e - s
                if progress:
                    progress(done, total)
                yield s, e, r
            return
        pool = self._executor()
        pending: deque[tuple[int, int, Future[T]]] = deque()
        it = iter(spans)
        try:
            for s, e in it:
                pending.append((s, e, pool.submit(work, s, e)))
                if len(pending) >= self.max_in_flight:
                    break
            while pending:
                s, e, fut = pending.popleft()
                r = fut.result()
                nxt = next(it, None)
                if nxt is not None:
                    pending.append((nxt[0], nxt[1], pool.submit(work, *nxt)))
                done += e - s
                if progress:
                    progress(done, total)
                yield s, e, r
        finally:
            for _, _, fut in pending:
                fut.cancel()
            for _, _, fut in pending:   # don't leave work running behind the caller's back
                if not fut.cancelled():
                    try:
                        fut.result()
                    except BaseException:
                        pass

    def close(self) -> None:
        """Stop the worker threads; later multi-chunk calls raise ClientClosedError. Idempotent."""
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> "Batcher":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
