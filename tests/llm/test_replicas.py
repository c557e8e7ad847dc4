"""Replica selection, ejection and the adaptive cap: pure logic, driven by tables and a hand-held clock."""

from __future__ import annotations

import math

from dataclasses import replace

import pytest

from reasonmed_async.llm.replicas import SHAPES, shape, Limit, PoolPolicy, ReplicaPool, Ticket, adapt

FIXED = PoolPolicy(max_concurrency=4, adaptive=False, eject_after=3, cooloff_s=10.0)


def make_pool(*states: dict, policy: PoolPolicy = FIXED) -> ReplicaPool:
    pool = ReplicaPool([f"http://r{i}/v1" for i in range(len(states))], policy)
    for replica, state in zip(pool.replicas, states, strict=True):
        for key, value in state.items():
            setattr(replica, key, value)
    return pool


# --------------------------------------------------------------------------- selection

SELECTION = [
    # (replica states, now, model, expected (index, probe) or None)
    pytest.param([{}, {}, {}], 0.0, "m", (0, False), id="all-idle-first"),
    pytest.param([{"outstanding": 3}, {"outstanding": 1}, {"outstanding": 2}], 0.0, "m", (1, False), id="fewest"),
    pytest.param([{"outstanding": 4}, {"outstanding": 4}, {"outstanding": 3}], 0.0, "m", (2, False), id="cap-respected"),
    pytest.param([{"outstanding": 4}, {"outstanding": 4}], 0.0, "m", None, id="all-at-cap"),
    pytest.param([{"ejected_until": 5.0}, {"outstanding": 2}], 1.0, "m", (1, False), id="ejected-skipped"),
    pytest.param([{"ejected_until": 5.0}, {"outstanding": 2}], 5.0, "m", (0, True), id="probe-after-cooloff"),
    pytest.param([{"ejected_until": 5.0, "probing": True}, {"outstanding": 4}], 6.0, "m", None, id="one-probe-at-a-time"),
    pytest.param([{"ejected_until": 5.0}, {"ejected_until": 9.0}], 1.0, "m", None, id="all-ejected"),
    pytest.param([{"paused": {"m": 3.0}}, {"outstanding": 2}], 1.0, "m", (1, False), id="paused-model-skipped"),
    pytest.param([{"paused": {"m": 3.0}}, {"outstanding": 2}], 1.0, "other", (0, False), id="pause-is-per-model"),
    pytest.param([{"paused": {"m": 3.0}}, {"outstanding": 2}], 3.0, "m", (0, False), id="pause-over"),
    pytest.param([{"ejected_until": 2.0, "paused": {"m": 9.0}}, {}], 3.0, "m", (1, False), id="no-probe-while-paused"),
]


@pytest.mark.parametrize(("states", "now", "model", "expected"), SELECTION)
def test_selection(states: list[dict], now: float, model: str, expected: tuple[int, bool] | None) -> None:
    ticket = make_pool(*states).acquire(now, model)
    assert (None if ticket is None else (ticket.index, ticket.probe)) == expected


def test_ties_go_round_robin() -> None:
    pool = make_pool({}, {}, {})
    assert [pool.acquire(0.0, "m").index for _ in range(6)] == [0, 1, 2, 0, 1, 2]  # type: ignore[union-attr]
    single = make_pool({}, {}, {})
    picked = []
    for _ in range(4):
        ticket = single.acquire(0.0, "m")
        assert ticket is not None
        picked.append(ticket.index)
        single.succeeded(ticket, 0.0, latency_s=0.1, tokens=10)  # released at once: every replica ties again
    assert picked == [0, 1, 2, 0]


NEXT_CHANGE = [
    ([{}, {}], "m", None),
    ([{"ejected_until": 5.0}, {"ejected_until": 3.0}], "m", 3.0),
    ([{"ejected_until": 5.0, "probing": True}, {"ejected_until": 7.0}], "m", 7.0),
    ([{"paused": {"m": 2.0}}, {"ejected_until": 3.0}], "m", 2.0),
    ([{"paused": {"x": 2.0}}, {"ejected_until": 3.0}], "m", 3.0),
    ([{"ejected_until": 0.5}], "m", None),  # already due: acquire, not the clock, decides
]


@pytest.mark.parametrize(("states", "model", "expected"), NEXT_CHANGE)
def test_next_change(states: list[dict], model: str, expected: float | None) -> None:
    assert make_pool(*states).next_change(1.0, model) == expected


# --------------------------------------------------------------------------- outcomes and ejection


def run(pool: ReplicaPool, events: str, now: float = 0.0) -> ReplicaPool:
    """Drive replica 0 of ``pool`` through events: s(ucceeded) f(ailed) a(nswered) r(ate limited 2 s)."""
    for event in events:
        ticket = pool.acquire(now, "m")
        assert ticket is not None and ticket.index == 0
        if event == "s":
            pool.succeeded(ticket, now, latency_s=0.1, tokens=10)
        elif event == "f":
            pool.failed(ticket, now)
        elif event == "a":
            pool.answered(ticket, now)
        else:
            pool.rate_limited(ticket, now, 2.0)
    return pool


@pytest.mark.parametrize(("events", "ejected"), [
    ("fff", True), ("ff", False), ("ffsff", False), ("ffaf", False), ("fsfff", True), ("sss", False),
])
def test_consecutive_failures_eject(events: str, ejected: bool) -> None:
    pool = run(make_pool({}, policy=replace(FIXED, eject_last=True)), events, now=1.0)
    replica = pool.replicas[0]
    assert (replica.ejected_until == 11.0) is ejected
    assert pool.all_ejected() is ejected
    assert replica.outstanding == 0


@pytest.mark.parametrize(("outcome", "readmitted"), [("s", True), ("a", True), ("r", True), ("f", False)])
def test_half_open_probe(outcome: str, readmitted: bool) -> None:
    pool = make_pool({"ejected_until": 10.0, "ejections": 1, "limit": Limit(1.0)}, {})
    probe = pool.acquire(10.0, "m")
    assert probe == Ticket(0, "http://r0/v1", "m", probe=True)
    assert pool.acquire(10.0, "m").index == 1  # type: ignore[union-attr]  # the probe is alone
    {"s": lambda: pool.succeeded(probe, 10.5, latency_s=0.5, tokens=5), "a": lambda: pool.answered(probe, 10.5),
     "r": lambda: pool.rate_limited(probe, 10.5, 1.0), "f": lambda: pool.failed(probe, 10.5)}[outcome]()
    replica = pool.replicas[0]
    assert replica.probing is False
    assert replica.ejected_until == (None if readmitted else 20.5)
    assert replica.ejections == (1 if readmitted else 2)
    if readmitted:
        assert replica.limit == Limit(FIXED.start_cap)  # learns again from the start


def test_the_last_replica_in_is_never_taken_out_by_default() -> None:
    pool = run(make_pool({}), "ffffff", now=1.0)
    assert pool.replicas[0].ejected_until is None and not pool.all_ejected()
    pool = run(make_pool({}, {"ejected_until": 50.0, "ejections": 1}), "ffff", now=1.0)
    assert pool.replicas[0].ejected_until is None  # the other one is out: this one stays


def test_stragglers_and_abandoned_probes() -> None:
    pool = make_pool({}, policy=replace(FIXED, eject_last=True))
    tickets = [pool.acquire(0.0, "m") for _ in range(4)]
    for ticket in tickets[:3]:
        pool.failed(ticket, 1.0)  # type: ignore[arg-type]
    assert pool.replicas[0].ejected_until == 11.0
    pool.failed(tickets[3], 2.0)  # type: ignore[arg-type]  # in flight before the ejection: ignored
    assert pool.replicas[0].ejected_until == 11.0 and pool.replicas[0].ejections == 1
    probe = pool.acquire(11.0, "m")
    assert probe is not None and probe.probe
    pool.abandoned(probe)  # cancelled: nothing learnt, another request may probe
    assert pool.acquire(11.0, "m") == probe
    with pytest.raises(RuntimeError):
        pool.abandoned(Ticket(0, "http://r0/v1", "m"))
        pool.abandoned(Ticket(0, "http://r0/v1", "m"))


def test_rate_limited_pauses_the_model_on_that_replica() -> None:
    pool = run(make_pool({}), "r", now=1.0)
    assert pool.replicas[0].paused == {"m": 3.0}
    assert pool.acquire(2.9, "m") is None
    assert pool.next_change(2.9, "m") == 3.0
    assert pool.acquire(2.9, "other") is not None
    assert pool.acquire(3.0, "m") is not None


def test_pool_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        ReplicaPool([], FIXED)
    with pytest.raises(ValueError):
        ReplicaPool(["http://a", "http://a"], FIXED)
    with pytest.raises(ValueError):
        PoolPolicy(near_ratio=3.0, slow_ratio=2.0)


# --------------------------------------------------------------------------- the adaptive cap

AIMD = PoolPolicy(max_concurrency=16, initial_concurrency=4, ewma_alpha=1.0, baseline_drift=0.0, min_slowdown_s=0.001)

def learnt(cap: float, per_token: float, tokens: int = 99, **kw) -> Limit:
    """A limit that has learnt ``per_token`` seconds per token (EWMA and baseline) for answers of ``tokens``."""
    known = tuple(per_token if k == shape(tokens) else None for k in range(SHAPES))
    return Limit(cap, known, known, **kw)


ADAPT = [
    # (limit before, latency_s, tokens, now, cap after, note)
    pytest.param(Limit(4.0), 1.0, 99, 10.0, 5.0, id="first-sample-slow-start"),
    pytest.param(learnt(4.0, 0.01), 1.1, 99, 10.0, 5.0, id="near-baseline-slow-start-plus-one"),
    pytest.param(learnt(8.0, 0.01, slow_start=False), 1.0, 99, 10.0, 8.125, id="congestion-avoidance-plus-1/cap"),
    pytest.param(learnt(16.0, 0.01), 1.0, 99, 10.0, 16.0, id="never-above-max"),
    pytest.param(learnt(16.0, 0.01), 3.0, 99, 10.0, 8.0, id="over-2x-baseline-halves"),
    pytest.param(learnt(1.5, 0.01), 3.0, 99, 10.0, 1.0, id="never-below-one"),
    pytest.param(learnt(8.0, 0.01, last_cut=9.0), 3.0, 99, 10.0, 8.0, id="one-cut-per-round-trip"),
    pytest.param(learnt(8.0, 0.01, last_cut=6.0), 3.0, 99, 10.0, 4.0, id="sent-after-last-cut-cuts"),
    pytest.param(learnt(8.0, 0.01), 1.6, 99, 10.0, 8.0, id="between-near-and-slow-holds"),
    pytest.param(learnt(8.0, 0.0001), 0.05, 99, 10.0, 9.0, id="tiny-slowdown-is-noise"),
    # a 20-token verdict at 60 ms a token, where only 1,500-token CoTs at 20 ms were seen: its own first sample
    pytest.param(learnt(8.0, 0.02, tokens=1500), 1.26, 20, 10.0, 9.0, id="another-length-is-not-compared"),
    pytest.param(learnt(8.0, 0.02, tokens=1500), 90.0, 1500, 10.0, 4.0, id="same-length-3x-halves"),
]


@pytest.mark.parametrize(("limit", "latency", "tokens", "now", "cap"), ADAPT)
def test_adapt(limit: Limit, latency: float, tokens: int, now: float, cap: float) -> None:
    after = adapt(limit, latency_s=latency, tokens=tokens, now=now, policy=AIMD)
    assert after.cap == pytest.approx(cap)
    if cap < limit.cap:
        assert after.last_cut == now and after.slow_start is False


def test_adapt_off_keeps_the_cap() -> None:
    fixed = PoolPolicy(max_concurrency=16, adaptive=False)
    assert fixed.start_cap == 16.0
    assert adapt(Limit(16.0), latency_s=100.0, tokens=1, now=1.0, policy=fixed) == Limit(16.0)


def test_cap_falls_under_load_and_recovers() -> None:
    """A replica slows to 4x its baseline: the cap halves once per round trip down to 1, then climbs back to max."""
    policy = PoolPolicy(max_concurrency=16, initial_concurrency=16, ewma_alpha=0.5, baseline_drift=0.0)
    limit, now, caps = Limit(16.0), 0.0, []
    for _ in range(5):  # learn a baseline of 10 ms per token
        now += 1.0
        limit = adapt(limit, latency_s=1.0, tokens=99, now=now, policy=policy)
    for _ in range(12):  # overloaded: 40 ms per token; each answer was sent after the previous cut
        now += 4.0
        limit = adapt(limit, latency_s=4.0, tokens=99, now=now, policy=policy)
        caps.append(limit.cap)
    assert caps[-1] == 1.0 and caps == sorted(caps, reverse=True)
    assert limit.baseline[shape(99)] == pytest.approx(0.01)
    steps = 0
    while limit.cap < 16.0 and steps < 1000:
        now += 1.0
        limit = adapt(limit, latency_s=1.0, tokens=99, now=now, policy=policy)
        steps += 1
    assert limit.cap == 16.0 and steps < 1000
    assert not math.isinf(limit.last_cut)


# Answers of mixed lengths on one replica, as a run sends them: (completion tokens, seconds) per answer on an
# idle server.  A real server: prefill and overhead shared by few tokens make short answers dear per token;
# the fake's fixed delay makes every answer take the same time whatever its length.
REAL_MIX = [(1500, 30.5), (20, 1.3), (20, 1.2), (700, 14.4), (1500, 30.2), (60, 2.0), (20, 1.25)]
FIXED_DELAY_MIX = [(150, 0.5), (25, 0.5), (30, 0.5), (150, 0.5), (120, 0.5), (60, 0.5), (25, 0.5)]


@pytest.mark.parametrize("mix", [REAL_MIX, FIXED_DELAY_MIX], ids=["real-server", "fixed-delay"])
def test_mixed_lengths_on_an_idle_server_never_cut_and_congestion_still_does(mix) -> None:
    policy = PoolPolicy(max_concurrency=64, initial_concurrency=8, baseline_drift=0.0)
    limit, now = Limit(policy.start_cap), 0.0
    for _ in range(30):  # idle: the cap climbs to the max and is never cut
        for tokens, seconds in mix:
            now += seconds
            after = adapt(limit, latency_s=seconds, tokens=tokens, now=now, policy=policy)
            assert after.cap >= limit.cap
            limit = after
    assert limit.cap == 64.0
    for _ in range(10):  # overloaded: every answer 3x slower, each sent after the previous cut
        for tokens, seconds in mix:
            now += 3 * seconds
            limit = adapt(limit, latency_s=3 * seconds, tokens=tokens, now=now, policy=policy)
    assert limit.cap < 8.0
