"""Keep a Triton server up: restart it on the same ports when it dies, within limits.

    policy = RestartPolicy(max_restarts=5, window=60.0, backoff=0.5, max_backoff=10.0)
    with serve("model_repository", restart=policy) as server:   # the default policy
        ...            # a crashing request kills tritonserver: it is back in a few seconds
        server.restarts, server.failure      # how often it came back; why it gave up (or None)

The bundled Triton 2.51 HTTP frontend aborts or segfaults on some malformed requests
(a declared shape far larger than the data, JSON nested ~200,000 deep). Nothing in its
options refuses them early, so the defence is to come back: when the server process
exits while nobody asked it to stop, the supervisor ends what is left of it (Python-backend
stubs, shared memory), waits ``backoff`` seconds (doubling per crash within ``window``,
up to ``max_backoff``), starts the same command on the same ports and waits for readiness.

Two kinds of crash are told apart. A server that was serving (it had become ready, or had
started its HTTP service) and died is always brought back: whoever can send a crashing
request must not be able to switch the service off for good. A restart that never gets
to serve (it exits or hangs while starting: broken repository, port taken, missing
library) is a crash loop: more than ``max_restarts`` of those within ``window`` seconds
and the supervisor gives up; the handle's ``failure`` says why, ``wait()`` returns,
``aeserve serve`` exits non-zero. Every crash, restart and the giving-up are logged on the
``aeserve.serve`` logger (silent unless the application configures logging; ``aeserve
serve`` prints them).
"""

from __future__ import annotations

import logging
import math
import signal
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import InputError

if TYPE_CHECKING:
    from .launcher import ServerHandle

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RestartPolicy:
    """How a dead server is brought back. ``max_restarts`` failed restarts (never serving)
    within ``window`` seconds are tolerated, the next one gives up; a server that was serving
    is always restarted. Delays: ``backoff * 2**(k-1)`` for the k-th crash within ``window``,
    capped at ``max_backoff``."""

    max_restarts: int = 5
    window: float = 60.0
    backoff: float = 0.5
    max_backoff: float = 10.0

    def __post_init__(self) -> None:
        if isinstance(self.max_restarts, bool) or not isinstance(self.max_restarts, int) or self.max_restarts < 1:
            raise InputError(f"max_restarts must be an integer >= 1, got {self.max_restarts!r}")
        for name in ("window", "backoff", "max_backoff"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                raise InputError(f"{name} must be a positive number of seconds, got {v!r}")

    def delay(self, crash: int) -> float:
        """Seconds to wait before restart number ``crash`` (1-based) of the current window."""
        return min(self.max_backoff, self.backoff * 2 ** min(crash - 1, 30))


def describe_exit(code: int | None) -> str:
    """'code 1', 'signal SIGABRT' ... for a Popen return code."""
    if code is None:
        return "no exit code"
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"code {code}"


class Supervisor(threading.Thread):
    """The thread that watches one :class:`ServerHandle` and restarts its process (see module doc)."""

    def __init__(self, handle: "ServerHandle", policy: RestartPolicy, ready_timeout: float):
        super().__init__(name=f"aeserve-supervisor-{handle.http_port}", daemon=True)
        self.handle, self.policy, self.ready_timeout = handle, policy, ready_timeout
        self._crashes: deque[float] = deque()  # every crash within the window: sets the backoff
        self._failed: deque[float] = deque()   # restarts that never served: the give-up count

    def run(self) -> None:
        h = self.handle
        try:
            while True:
                process = h.process
                code = process.wait()
                if h.stopping:
                    return
                served = h.was_serving(process)
                n = self._count(self._crashes)
                failed = 0 if served else self._count(self._failed)
                why = (f"tritonserver (pid {process.pid}) exited with {describe_exit(code)} "
                       + ("while serving" if served else "before it was serving"))
                errors = h.recent_errors()
                if errors:
                    why += f" ({errors[-1]})"
                if failed > self.policy.max_restarts:
                    h.give_up(f"{why}: {failed} restarts within {self.policy.window:g} s never got to serve, more "
                              f"than the {self.policy.max_restarts} allowed; giving up")
                    log.error("%s", h.failure)
                    return
                delay = self.policy.delay(n)
                log.warning("%s; restarting on the same ports in %.1f s (crash %d within %g s%s)", why, delay, n,
                            self.policy.window,
                            "" if served else f"; failed start {failed} of at most {self.policy.max_restarts}")
                h.cleanup_process(process)
                if h.wait_stopped(delay):
                    return
                t0 = time.monotonic()
                if not h.respawn(self.ready_timeout):
                    continue  # stopped meanwhile, or died/hung while starting: counted on the next turn
                h.restarts += 1
                log.info("tritonserver restarted (pid %d), ready again %.1f s after the restart began",
                         h.pid, time.monotonic() - t0)
        except BaseException as e:  # noqa: BLE001 - never die silently: the handle must know
            h.give_up(f"the server supervisor failed: {e!r}")
            log.exception("server supervisor failed")

    def _count(self, events: deque[float]) -> int:
        """Record a crash now in ``events``; how many fall within the window."""
        now = time.monotonic()
        events.append(now)
        while events and now - events[0] > self.policy.window:
            events.popleft()
        return len(events)
