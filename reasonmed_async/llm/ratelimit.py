"""Client-side rate limiting for quota-limited deployments (Azure OpenAI RPM / TPM).

The arithmetic (``TokenBucket``, ``Cooldown``, the header parsers, the prompt
estimate) is pure: every method takes the current time ``now`` as an argument.
``DeploymentLimiter`` is the only part that waits; it reads an injectable clock
and sleeps exactly the computed time (a timed wait, never a polling loop).
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

_EPS = 1e-9
_CHARS_PER_TOKEN = 4
_TOKENS_PER_MESSAGE = 4
_TOKENS_PER_REPLY = 3


def _number(name: str, value: float, *, zero_ok: bool) -> float:
    if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
            or value < 0 or (value == 0 and not zero_ok)):
        raise ValueError(f"{name} must be a finite number {'>=' if zero_ok else '>'} 0, got {value!r}")
    return float(value)


def _amount(amount: float) -> float:
    return _number("amount", amount, zero_ok=True)


class TokenBucket:
    """A continuously refilled bucket: ``rate_per_minute`` units per ``window_s`` (60) seconds.

    ``capacity = rate * burst_s / window_s``: Azure enforces per-minute quotas
    over short windows, so the burst we allow is what the rate yields in
    ``burst_s`` seconds.  Any interval of ``window_s`` seconds sees at most
    ``capacity + rate`` (see ``window_safe_rate``).  The bucket starts full at
    the first time it is shown.

    An amount larger than the capacity can never be fully saved up.  It is not
    refused: it waits for a full bucket, then is taken whole, and the level goes
    negative (a debt repaid by refill), so the long-run rate still holds."""

    def __init__(self, rate_per_minute: float, burst_s: float = 10.0, window_s: float = 60.0) -> None:
        self._stamp: float | None = None
        self._level = 0.0
        self._window_s = _number("window_s", window_s, zero_ok=False)
        self.reconfigure(rate_per_minute, burst_s)

    @property
    def capacity(self) -> float:
        return self._capacity

    @property
    def burst_s(self) -> float:
        return self._burst_s

    def reconfigure(self, rate_per_minute: float, burst_s: float, now: float | None = None) -> None:
        """New rate and burst (hot reload): refill at the old rate up to ``now``, then cap at the new capacity."""
        rate = _number("rate_per_minute", rate_per_minute, zero_ok=False)
        burst = _number("burst_s", burst_s, zero_ok=False)
        if now is not None:
            self._refill(now)
        self._burst_s = burst
        self._capacity = rate * burst / self._window_s
        self._rate_per_s = rate / self._window_s
        self._level = min(self._level, self._capacity)

    def level(self, now: float) -> float:
        self._refill(now)
        return self._level

    def _refill(self, now: float) -> None:
        if self._stamp is None:
            self._stamp, self._level = now, self._capacity
            return
        if now > self._stamp:
            self._level = min(self._capacity, self._level + (now - self._stamp) * self._rate_per_s)
            self._stamp = now

    def seconds_until(self, amount: float, now: float) -> float:
        """Seconds from ``now`` until ``amount`` can be taken (0 if now); amounts above capacity count as capacity."""
        need = min(_amount(amount), self._capacity)
        self._refill(now)
        missing = need - self._level
        return 0.0 if missing <= _EPS * max(1.0, need) else missing / self._rate_per_s

    def take(self, amount: float, now: float) -> None:
        """Take ``amount`` whether or not it is there (the caller waited ``seconds_until``); may go negative."""
        amount = _amount(amount)
        self._refill(now)
        self._level -= amount

    def credit(self, amount: float, now: float) -> None:
        """Give back an over-reservation, never above capacity."""
        amount = _amount(amount)
        self._refill(now)
        self._level = min(self._capacity, self._level + amount)

    def observe_remaining(self, remaining: float, now: float) -> None:
        """A server's ``x-ratelimit-remaining-*``: lower our level to it if it is lower; never raise it."""
        remaining = _amount(remaining)
        self._refill(now)
        self._level = min(self._level, remaining)


class Cooldown:
    """A shared "nobody sends before ``until``" deadline, extended by 429 answers."""

    def __init__(self) -> None:
        self.until = -math.inf

    def extend(self, seconds: float, now: float) -> None:
        self.until = max(self.until, now + max(0.0, seconds))

    def seconds_left(self, now: float) -> float:
        return max(0.0, self.until - now)


def estimate_prompt_tokens(messages: Iterable[Any]) -> int:
    """A tokenizer-free upper-ish estimate of a chat prompt's tokens.

    ceil(characters / 4) per message content (English averages ~4 characters a
    token) plus 4 tokens per message for role and separators, plus 3 for the
    reply priming.  Messages are ``ChatMessage``-like (``.content``) or mappings
    with a ``"content"`` key."""
    total = _TOKENS_PER_REPLY
    for message in messages:
        content = message["content"] if isinstance(message, Mapping) else message.content
        total += _TOKENS_PER_MESSAGE + math.ceil(len(content or "") / _CHARS_PER_TOKEN)
    return total


def _non_negative(raw: str | None) -> float | None:
    try:
        value = float(raw) if raw is not None else math.nan
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def parse_retry_after(headers: Mapping[str, str], wall_now: float) -> float | None:
    """Seconds to wait, from ``retry-after-ms``, else ``retry-after`` (seconds, or an HTTP date compared
    with ``wall_now``, a ``time.time()``)."""
    lower = {k.lower(): v for k, v in headers.items()}
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = _non_negative(lower.get(name))
        if value is not None:
            return value / divisor
    try:
        parsed = email.utils.parsedate_to_datetime(lower["retry-after"])
    except (KeyError, TypeError, ValueError, IndexError):
        return None
    return max(0.0, parsed.timestamp() - wall_now)


def parse_remaining(headers: Mapping[str, str]) -> tuple[float | None, float | None]:
    """(requests, tokens) remaining from ``x-ratelimit-remaining-requests`` / ``-tokens``; None when absent or bad."""
    lower = {k.lower(): v for k, v in headers.items()}
    return (_non_negative(lower.get("x-ratelimit-remaining-requests")),
            _non_negative(lower.get("x-ratelimit-remaining-tokens")))


class Reservation:
    """What one request took from its deployment's token bucket; ``settle`` squares it with real usage once."""

    def __init__(self, limiter: DeploymentLimiter, tokens: int) -> None:
        self._limiter = limiter
        self.tokens = tokens
        self.settled = False

    def settle(self, actual_total_tokens: int) -> None:
        """Credit back what was reserved but not used (or take the excess when the estimate was low)."""
        if self.settled:
            return
        self.settled = True
        self._limiter._settle(self.tokens, actual_total_tokens)


_EPSILON_S = 1e-9


def window_safe_rate(quota: float, burst_s: float, window_s: float = 60.0) -> float:
    """The bucket rate that keeps every interval within its share of ``quota`` (per ``window_s``).

    Azure enforces a per-minute quota over short windows too: a tenth of the minute (10 s) may carry a
    sixth of the quota.  A bucket of rate r (per ``window_s``) and burst b seconds admits at most
    ``r * (b + t) / window_s`` in any t seconds, so with ``short = window_s / 6`` the rate is
    ``quota * short / (short + b)``: every short window then stays within ``quota / 6`` and every
    full window within ``quota``.  With the default 1 s burst, 10/11 of the quota."""
    short = window_s / 6
    return quota * short / (short + burst_s)


class DeploymentLimiter:
    """RPM and TPM buckets plus a shared 429 cooldown for one deployment.

    ``acquire`` serves waiters first come, first served (an ``asyncio.Lock``):
    the head waiter sleeps exactly until the cooldown has passed and both
    buckets allow, re-checking after each sleep because a 429 or a server
    header may have moved the goal meanwhile."""

    def __init__(self, rpm: float, tpm: float, burst_s: float = 10.0, *,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 default_cooldown_s: float = 1.0, window_s: float = 60.0) -> None:
        self.requests = TokenBucket(rpm, burst_s, window_s)
        self.tokens = TokenBucket(tpm, burst_s, window_s)
        self.cooldown = Cooldown()
        self.default_cooldown_s = default_cooldown_s
        self._clock = clock
        self._sleep = sleep
        self._lock = asyncio.Lock()

    def wait_s(self, request_tokens: int) -> float:
        now = self._clock()
        return max(self.cooldown.seconds_left(now), self.requests.seconds_until(1, now),
                   self.tokens.seconds_until(request_tokens, now))

    async def acquire(self, request_tokens: int) -> Reservation:
        _amount(request_tokens)
        async with self._lock:
            while (wait := self.wait_s(request_tokens)) > _EPSILON_S:  # float dust is no reason to wait
                await self._sleep(wait)
            now = self._clock()
            self.requests.take(1, now)
            self.tokens.take(request_tokens, now)
        return Reservation(self, request_tokens)

    def _settle(self, reserved: int, actual: int) -> None:
        now = self._clock()
        if actual < reserved:
            self.tokens.credit(reserved - actual, now)
        elif actual > reserved:
            self.tokens.take(actual - reserved, now)

    def on_429(self, retry_after_s: float | None) -> None:
        """Every task on this deployment waits until the server's Retry-After (or the default) has passed."""
        self.cooldown.extend(self.default_cooldown_s if retry_after_s is None else retry_after_s, self._clock())

    def observe(self, headers: Mapping[str, str]) -> None:
        requests, tokens = parse_remaining(headers)
        now = self._clock()
        if requests is not None:
            self.requests.observe_remaining(requests, now)
        if tokens is not None:
            self.tokens.observe_remaining(tokens, now)

    def update_limits(self, rpm: float, tpm: float, burst_s: float | None = None) -> None:
        """Hot reload: new quotas (and burst) take effect now; saved-up units above the new capacity are dropped."""
        now = self._clock()
        self.requests.reconfigure(rpm, self.requests.burst_s if burst_s is None else burst_s, now)
        self.tokens.reconfigure(tpm, self.tokens.burst_s if burst_s is None else burst_s, now)
