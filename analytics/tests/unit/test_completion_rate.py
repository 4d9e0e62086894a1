from decimal import Decimal

import pytest

from lapor.analytics.domain import Completion, completion_rate


def test_pontianak_2019_2024_is_95_96_percent():
    # 904 / 942 = 95.966...%: the official figure truncates, it never rounds up.
    assert completion_rate(942, 904) == Decimal("95.96")
    assert str(Completion(942, 904).rate) == "95.96"


@pytest.mark.parametrize(
    ("received", "resolved", "rate"),
    [(1, 1, "100.00"), (3, 1, "33.33"), (3, 2, "66.66"), (7, 0, "0.00"), (600000, 599999, "99.99")],
)
def test_rates_are_truncated_to_two_decimals(received, resolved, rate):
    assert completion_rate(received, resolved) == Decimal(rate)


def test_nothing_received_has_no_rate():
    assert completion_rate(0, 0) is None


@pytest.mark.parametrize(("received", "resolved"), [(1, 2), (-1, 0), (5, -1)])
def test_impossible_counts_are_refused(received, resolved):
    with pytest.raises(ValueError, match="impossible"):
        completion_rate(received, resolved)
