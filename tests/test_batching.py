"""aeserve.batching: chunking, ordered bounded-concurrency map, error propagation."""

from __future__ import annotations

import threading
import time

import pytest

from aeserve.batching import Batcher, check_max_in_flight, chunks
from aeserve.errors import InferenceError, InputError


def test_chunks():
    assert chunks(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert chunks(8, 8) == [(0, 8)]
    assert chunks(0, 3) == []
    with pytest.raises(InputError):
        chunks(5, 0)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "4", None])
def test_max_in_flight_validated(bad):
    with pytest.raises(InputError, match="max_in_flight"):
        check_max_in_flight(bad)


@pytest.mark.parametrize("inflight", [1, 3])
def test_ordered_and_bounded(inflight):
    lock, active, peak, started = threading.Lock(), [0], [0], []

    def work(s, e):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
            started.append(s)
        time.sleep(0.01 * ((s // 2) % 3))  # finish out of order
        with lock:
            active[0] -= 1
        return list(range(s, e))

    seen, progress = [], []
    with Batcher(inflight) as b:
        for s, e, r in b.imap(work, chunks(21, 2), lambda d, t: progress.append((d, t))):
            assert r == list(range(s, e))
            seen.append(s)
            # never more than `inflight` chunks started beyond the one consumed
            assert len(started) <= len(seen) + inflight
    assert seen == list(range(0, 21, 2))
    assert peak[0] <= inflight
    assert progress[-1] == (21, 21) and [d for d, _ in progress] == sorted(d for d, _ in progress)


def test_first_error_propagates_and_stops():
    calls = []

    def work(s, e):
        calls.append(s)
        if s == 4:
            raise InferenceError("boom")
        time.sleep(0.005)
        return s

    with Batcher(2) as b:
        with pytest.raises(InferenceError, match="boom"):
            list(b.imap(work, chunks(200, 2)))
    assert len(calls) < 20  # the rest were never submitted


def test_client_progress_opens_with_its_total(capsys):
    from aeserve.progress import client_progress

    update, close = client_progress("encode", 5000)
    for done in range(500, 5001, 500):
        update(done, 5000)
    close()
    first = capsys.readouterr().err.replace("\r", "\n").strip().splitlines()[0]
    assert "/5000" in first and "0img" not in first   # not a total-less "encode: 0img"
