"""Which replica serves the next request, and how many each may hold: pure logic, no I/O, no asyncio.

Every function takes the time as ``now`` (seconds on any monotonic clock), so
tables test it without sleeping.  The async backend owns one ``ReplicaPool``,
calls ``acquire`` to admit a request and exactly one of ``succeeded`` /
``failed`` / ``answered`` / ``rate_limited`` when it ends.

- Selection: a replica due for a half-open probe first (one probe at a time);
  otherwise the admitted replica with the fewest outstanding requests among
  those under their cap and not paused for the model; ties go round robin.
- Adaptive cap (``adapt``, AIMD with slow start): the latency per completion
  token is smoothed (EWMA) per completion length (``shape``: 1, 2-3, 4-7, ...
  tokens); each length's baseline is the lowest EWMA seen, drifting up slowly
  so it can forget.  A sample is compared with its own length's: a judge's
  20-token verdict after a 2,000-token prompt costs far more per token than a
  1,500-token CoT on an idle server (the prompt's prefill and any queueing are
  shared by few tokens), so one baseline for both read every verdict as
  congestion and cut the cap to a few requests (measured against a server
  with a fixed 0.5 s per answer: 6 calls/s with 64 admitted).  Over ``slow_ratio`` x baseline the cap is cut by
  ``decrease`` (at most once per round trip: only a request sent after the
  last cut can cut again), never below 1; within ``near_ratio`` x baseline it
  grows: +1 per success until the first cut (slow start), then +1/cap.
- Ejection: ``eject_after`` consecutive failures (no answer, 5xx, timeout)
  eject a replica for ``cooloff_s``; then one request probes it, and success
  re-admits it (its cap learns again from the start), failure ejects it again.
- A 429 pauses that replica for that model until its Retry-After has passed,
  so no request reaches the server early.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class PoolPolicy:
    max_concurrency: int = 64
    adaptive: bool = True
    initial_concurrency: int = 8
    eject_after: int = 3
    cooloff_s: float = 10.0
    #: also take out the last replica still in (every request then waits for its probe)
    eject_last: bool = False
    slow_ratio: float = 2.0
    near_ratio: float = 1.25
    decrease: float = 0.5
    ewma_alpha: float = 0.2
    baseline_drift: float = 0.01
    #: a slowdown smaller than this (seconds per token) is noise, not load
    min_slowdown_s: float = 0.002

    def __post_init__(self) -> None:
        if self.max_concurrency < 1 or self.initial_concurrency < 1 or self.eject_after < 1:
            raise ValueError("max_concurrency, initial_concurrency and eject_after must be >= 1")
        if self.cooloff_s < 0:
            raise ValueError("cooloff_s must be >= 0")
        if not 0 < self.decrease < 1 or not 0 < self.ewma_alpha <= 1:
            raise ValueError("decrease must be in (0, 1) and ewma_alpha in (0, 1]")
        if not 1 <= self.near_ratio < self.slow_ratio:
            raise ValueError("need 1 <= near_ratio < slow_ratio")

    @property
    def start_cap(self) -> float:
        return float(min(self.initial_concurrency, self.max_concurrency) if self.adaptive else self.max_concurrency)


SHAPES = 14  # completion lengths told apart: 1, 2-3, 4-7, ..., 4,096 tokens and more
_UNKNOWN: tuple[float | None, ...] = (None,) * SHAPES


def shape(tokens: int) -> int:
    """The completion-length class of an answer of ``tokens`` tokens (its baseline's index)."""
    return min(SHAPES - 1, (max(0, tokens) + 1).bit_length() - 1)


@dataclass(frozen=True)
class Limit:
    """The adaptive state of one replica: its cap and what it has learnt of its latency, per ``shape``."""

    cap: float
    ewma: tuple[float | None, ...] = _UNKNOWN
    baseline: tuple[float | None, ...] = _UNKNOWN
    last_cut: float = -math.inf
    slow_start: bool = True


def adapt(limit: Limit, *, latency_s: float, tokens: int, now: float, policy: PoolPolicy) -> Limit:
    """The limit after a success that took ``latency_s`` for ``tokens`` completion tokens, ending at ``now``."""
    if not policy.adaptive:
        return limit
    k = shape(tokens)
    sample = max(0.0, latency_s) / (max(0, tokens) + 1)
    learnt, lowest = limit.ewma[k], limit.baseline[k]
    ewma = sample if learnt is None else learnt + policy.ewma_alpha * (sample - learnt)
    base = ewma if lowest is None else min(
        ewma, lowest + policy.baseline_drift * (ewma - lowest))  # the lowest EWMA, slowly forgotten
    cap, last_cut, slow_start = limit.cap, limit.last_cut, limit.slow_start
    if ewma > policy.slow_ratio * base and ewma - base > policy.min_slowdown_s:
        if now - latency_s >= last_cut:  # else sent before the last cut: that cut already answered this congestion
            cap, last_cut, slow_start = max(1.0, cap * policy.decrease), now, False
    elif ewma <= policy.near_ratio * base or ewma - base <= policy.min_slowdown_s:
        cap = min(float(policy.max_concurrency), cap + (1.0 if slow_start else 1.0 / cap))
    ewmas, bases = list(limit.ewma), list(limit.baseline)
    ewmas[k], bases[k] = ewma, base
    return Limit(cap, tuple(ewmas), tuple(bases), last_cut, slow_start)  # one new Limit per success


@dataclass
class Replica:
    url: str
    limit: Limit
    outstanding: int = 0
    failures: int = 0
    ejected_until: float | None = None
    probing: bool = False
    paused: dict[str, float] = field(default_factory=dict)
    sent: int = 0
    ejections: int = 0

    @property
    def cap(self) -> int:
        return max(1, int(self.limit.cap))

    def usable_for(self, model: str, now: float) -> bool:
        until = self.paused.get(model)
        if until is not None and until <= now:
            del self.paused[model]
            return True
        return until is None


@dataclass(frozen=True)
class Ticket:
    index: int
    url: str
    model: str
    probe: bool = False


class ReplicaPool:
    def __init__(self, urls: list[str], policy: PoolPolicy) -> None:
        if not urls:
            raise ValueError("a replica pool needs at least one URL")
        if len(set(urls)) != len(urls):
            raise ValueError("replica URLs must be distinct")
        self.policy = policy
        self.replicas = [Replica(url, Limit(policy.start_cap)) for url in urls]
        self._next = 0  # round-robin start: ties go to the first replica at or after it

    # ------------------------------------------------------------------ admission

    def acquire(self, now: float, model: str) -> Ticket | None:
        """A ticket for the replica that should serve the next ``model`` request, or None if none can now."""
        n = len(self.replicas)
        if n == 1:  # one URL (a server, or a router in front of several): no choice to make
            r = self.replicas[0]
            if r.ejected_until is not None and r.ejected_until <= now and not r.probing and r.usable_for(model, now):
                r.probing = True
                return self._take(0, model, probe=True)
            return self._take(0, model, probe=False) if self._ready(r, model, now) else None
        order = [(self._next + i) % n for i in range(n)]
        for i in order:
            r = self.replicas[i]
            if r.ejected_until is not None and r.ejected_until <= now and not r.probing and r.usable_for(model, now):
                r.probing = True
                return self._take(i, model, probe=True)
        ready = [i for i in order if self._ready(self.replicas[i], model, now)]
        if not ready:
            return None
        return self._take(min(ready, key=lambda i: self.replicas[i].outstanding), model, probe=False)

    def _ready(self, r: Replica, model: str, now: float) -> bool:
        return r.ejected_until is None and r.outstanding < r.cap and r.usable_for(model, now)

    def _take(self, i: int, model: str, *, probe: bool) -> Ticket:
        r = self.replicas[i]
        r.outstanding += 1
        r.sent += 1
        self._next = (i + 1) % len(self.replicas)
        return Ticket(i, r.url, model, probe)

    def still_admits(self, ticket: Ticket, now: float) -> bool:
        """Whether ``ticket``'s replica would still take its request now (no 429 paused its model, no ejection
        since), for a ticket handed over to a waiter that is only now about to send."""
        r = self.replicas[ticket.index]
        return (ticket.probe or r.ejected_until is None) and r.usable_for(ticket.model, now)

    def has_room(self, now: float) -> bool:
        """Whether a request of some model could be admitted now: a slot free on an admitted replica, or a probe due."""
        return any((r.outstanding < r.cap) if r.ejected_until is None else (r.ejected_until <= now and not r.probing)
                   for r in self.replicas)

    def next_change(self, now: float, model: str) -> float | None:
        """The earliest future time at which the clock alone may admit a ``model`` request (probe due, pause over)."""
        times = [r.ejected_until for r in self.replicas
                 if r.ejected_until is not None and not r.probing and r.ejected_until > now]
        times += [until for r in self.replicas if (until := r.paused.get(model)) is not None and until > now]
        return min(times, default=None)

    def all_ejected(self) -> bool:
        return all(r.ejected_until is not None for r in self.replicas)

    # ------------------------------------------------------------------ outcomes

    def succeeded(self, ticket: Ticket, now: float, *, latency_s: float, tokens: int) -> None:
        r = self._release(ticket)
        if ticket.probe:
            self._readmit(r)
        elif r.ejected_until is None:
            r.failures = 0
            r.limit = adapt(r.limit, latency_s=latency_s, tokens=tokens, now=now, policy=self.policy)

    def failed(self, ticket: Ticket, now: float) -> None:
        """No usable answer from the server itself: connection lost, 5xx, timeout."""
        r = self._release(ticket)
        if ticket.probe:
            r.probing = False
            self._eject(r, now)
        elif r.ejected_until is None:
            r.failures += 1
            if r.failures >= self.policy.eject_after and self._others_admitted(r):
                self._eject(r, now)

    def answered(self, ticket: Ticket, now: float) -> None:
        """The server answered, though not with a completion (4xx, bad body): it is alive."""
        r = self._release(ticket)
        if ticket.probe:
            self._readmit(r)
        elif r.ejected_until is None:
            r.failures = 0

    def rate_limited(self, ticket: Ticket, now: float, retry_after_s: float | None) -> None:
        """A 429: the server is alive; the replica takes no ``ticket.model`` request until Retry-After has passed."""
        self.answered(ticket, now)
        if retry_after_s is not None and retry_after_s > 0:
            paused = self.replicas[ticket.index].paused
            paused[ticket.model] = max(now + retry_after_s, paused.get(ticket.model, -math.inf))

    def abandoned(self, ticket: Ticket) -> None:
        """The caller gave up (cancelled) before an outcome: nothing is learnt; a probe is due again."""
        r = self._release(ticket)
        if ticket.probe:
            r.probing = False

    def _release(self, ticket: Ticket) -> Replica:
        r = self.replicas[ticket.index]
        if r.outstanding <= 0:
            raise RuntimeError(f"replica {r.url}: released more tickets than it gave")
        r.outstanding -= 1
        return r

    def _others_admitted(self, r: Replica) -> bool:
        """Ejecting the last admitted replica would only pause every request for the cool-off:
        it stays, and the retry policy's backoff spaces the attempts instead."""
        return self.policy.eject_last or any(o is not r and o.ejected_until is None for o in self.replicas)

    def _eject(self, r: Replica, now: float) -> None:
        r.ejected_until = now + self.policy.cooloff_s
        r.failures = 0
        r.ejections += 1

    def _readmit(self, r: Replica) -> None:
        r.ejected_until, r.probing, r.failures = None, False, 0
        r.limit = Limit(self.policy.start_cap)

    def snapshot(self) -> list[dict[str, object]]:
        return [{"url": r.url, "outstanding": r.outstanding, "cap": r.cap, "sent": r.sent,
                 "ejected": r.ejected_until is not None, "ejections": r.ejections} for r in self.replicas]
