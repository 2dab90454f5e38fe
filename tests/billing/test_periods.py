"""Period ends follow the anchor day, clamped to the month's end, and never drift."""

import calendar
import itertools
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.periods import months_after, period_end_after


def utc(*parts):
    return datetime(*parts, tzinfo=UTC)


def renewals(anchor, months, count):
    """The first period's end, then `count` renewals, each from the previous end as a renewal does."""
    ends = [months_after(anchor, months)]
    for _ in range(count):
        ends.append(period_end_after(anchor=anchor, expires_at=ends[-1], months=months))
    return ends


@pytest.mark.parametrize(
    ("anchor", "months", "expected"),
    [
        (utc(2026, 1, 31, 10), 1, [utc(2026, 2, 28, 10), utc(2026, 3, 31, 10), utc(2026, 4, 30, 10), utc(2026, 5, 31, 10)]),
        (utc(2025, 11, 30), 3, [utc(2026, 2, 28), utc(2026, 5, 30), utc(2026, 8, 30)]),
        (utc(2028, 1, 31), 1, [utc(2028, 2, 29), utc(2028, 3, 31)]),
        (utc(2026, 12, 15, 23, 59), 12, [utc(2027, 12, 15, 23, 59), utc(2028, 12, 15, 23, 59)]),
    ],
    ids=["monthly-from-jan-31", "quarterly-from-nov-30", "leap-year", "yearly-over-new-year"],
)
def test_each_period_ends_on_the_anchor_day_clamped_to_the_month(settings, anchor, months, expected):
    settings.TIME_ZONE = "UTC"

    assert renewals(anchor, months, len(expected) - 1) == expected


def test_the_anchor_day_is_the_billing_time_zones(settings):
    """00:30 on 1 March in Moscow is still 28 February in UTC: the month is Moscow's."""
    settings.TIME_ZONE = "Europe/Moscow"
    anchor = utc(2026, 2, 28, 21, 30)  # 2026-03-01 00:30 MSK

    end = months_after(anchor, 1)

    assert end == utc(2026, 3, 31, 21, 30)  # 2026-04-01 00:30 MSK
    assert end.isoformat() == "2026-04-01T00:30:00+03:00"


@given(
    anchor=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1)).map(lambda moment: moment.replace(tzinfo=UTC)),
    months=st.sampled_from([1, 3, 6, 12, 24]),
    count=st.integers(min_value=1, max_value=30),
)
def test_renewing_one_period_at_a_time_lands_where_counting_from_the_anchor_does(anchor, months, count):
    ends = renewals(anchor, months, count)

    assert ends[-1] == months_after(anchor, months * (count + 1))
    assert all(end.day == min(anchor.day, calendar.monthrange(end.year, end.month)[1]) for end in ends)
    assert all(end.time() == anchor.time() for end in ends)
    assert all(later > earlier for earlier, later in itertools.pairwise(ends))
