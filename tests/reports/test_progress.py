import pytest

from reasonmed_async.reports.progress import Reading, estimate


@pytest.mark.parametrize(("first", "now", "fraction", "rate", "tokens", "cost", "eta"), [
    # half the questions settled in 100 s: as long again to go, everything doubles
    (Reading(0, 0, 0, 0, 0, 0.0), Reading(100, 10, 5, 200, 1000, 2.0), 0.5, 2.0, 2000, 4.0, 100.0),
    # rates come from the change between the readings, not from zero
    (Reading(100, 10, 5, 200, 1000, 2.0), Reading(110, 10, 6, 260, 1200, 2.4), 0.6, 6.0, 2000, 4.0, 40.0),
    # nothing settled yet: no ETA, no projection
    (Reading(0, 0, 0, 0, 0, 0.0), Reading(10, 10, 0, 30, 500, 1.0), 0.0, 3.0, 0, 0.0, None),
    # all settled
    (Reading(0, 0, 0, 0, 0, 0.0), Reading(50, 4, 4, 100, 800, 1.0), 1.0, 2.0, 800, 1.0, 0.0),
])
def test_estimate(first, now, fraction, rate, tokens, cost, eta):
    est = estimate(first, now)
    assert est.fraction == pytest.approx(fraction)
    assert est.calls_per_s == pytest.approx(rate)
    assert est.projected_tokens == tokens
    assert est.projected_cost == pytest.approx(cost)
    assert est.eta_s == (None if eta is None else pytest.approx(eta))
