"""Billing periods: when a period ends, counted from the service's anchor so that it never drifts.

A service's first period starts when its account is first created (the anchor). Each later period
ends on the anchor's day of the month, clamped to the month's last day, at the anchor's time of day
in the billing time zone (TIME_ZONE): monthly from 31 January gives 28 February, 31 March, 30 April.
Every end is computed from the anchor, never from the previous end (28 February + 1 month would
drift to 28 March).
"""

import calendar
from datetime import datetime
from zoneinfo import ZoneInfo

from django.conf import settings


def billing_zone() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


def months_after(anchor: datetime, months: int) -> datetime:
    """`anchor` moved `months` on, on the anchor's day (clamped to the month's end), in the billing time zone."""
    local = anchor.astimezone(billing_zone())
    index = local.month - 1 + months
    year, month = local.year + index // 12, index % 12 + 1
    day = min(local.day, calendar.monthrange(year, month)[1])
    return local.replace(year=year, month=month, day=day)


def months_between(anchor: datetime, moment: datetime) -> int:
    """Whole calendar months from the anchor's month to the moment's, in the billing time zone."""
    zone = billing_zone()
    start, end = anchor.astimezone(zone), moment.astimezone(zone)
    return (end.year - start.year) * 12 + end.month - start.month


def period_end_after(*, anchor: datetime, expires_at: datetime, months: int) -> datetime:
    """The end of the period that follows the one ending at `expires_at`, counted from the anchor."""
    return months_after(anchor, months_between(anchor, expires_at) + months)
