"""The billing cycle's calendar: the settings of the daily run, and calendar dates in the billing time zone.

Every rule of the cycle compares calendar dates (an expiry's date in TIME_ZONE), never times of day.
"""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.utils import timezone

from billing.periods import billing_zone


@dataclass(frozen=True)
class CycleRules:
    renew_days_before: int
    notice_days: tuple[int, ...]
    grace_days: int
    delete_after_days: int

    @classmethod
    def from_settings(cls) -> "CycleRules":
        return cls(
            renew_days_before=settings.BILLING_RENEW_DAYS_BEFORE,
            notice_days=tuple(sorted(set(settings.BILLING_NOTICE_DAYS), reverse=True)),
            grace_days=settings.BILLING_GRACE_DAYS,
            delete_after_days=settings.BILLING_DELETE_AFTER_DAYS,
        )

    def renew_on(self, expiry: date) -> date:
        """The first date the run renews a service that expires on `expiry`."""
        return expiry - timedelta(days=self.renew_days_before)

    def suspend_on(self, expiry: date) -> date:
        """The first date the run suspends a service still unpaid since `expiry`."""
        return expiry + timedelta(days=self.grace_days)

    def delete_on(self, suspended: date) -> date:
        """The first date the run deletes a service suspended for non-payment on `suspended`."""
        return suspended + timedelta(days=self.delete_after_days)


def local_date(moment: datetime) -> date:
    """The calendar date of `moment` in the billing time zone."""
    return moment.astimezone(billing_zone()).date()


def day_start(day: date) -> datetime:
    """Midnight at the start of `day` in the billing time zone."""
    return datetime.combine(day, time.min, tzinfo=billing_zone())


def today() -> date:
    return local_date(timezone.now())
