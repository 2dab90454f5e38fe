"""Services running before the billing cycle existed get their period and, when suspended, the day it took effect."""

from datetime import UTC, datetime

import pytest
import time_machine

from tests.billing.conftest import migrate
from tests.factories import ServiceFactory

BEFORE = [("billing", "0009_service_periods_and_auto_renew")]
AFTER = [("billing", "0011_periods_for_running_services")]


def utc(*parts):
    return datetime(*parts, tzinfo=UTC)


@pytest.mark.django_db(transaction=True)
def test_running_services_are_paid_up_to_their_next_period_end_and_suspensions_get_their_day(latest_schema_after, settings):
    settings.TIME_ZONE = "UTC"
    monthly, quarterly, suspended, ordered = (ServiceFactory(period=period) for period in (1, 3, 1, 1))
    old = migrate(BEFORE)
    Service, Change = old.get_model("billing", "Service"), old.get_model("billing", "ServiceStatusChange")
    Service.objects.filter(pk__in=[monthly.pk, quarterly.pk]).update(status="active")
    Service.objects.filter(pk=suspended.pk).update(status="suspended", updated_at=utc(2026, 9, 1))
    for service, activated in ((monthly, utc(2026, 1, 31, 10)), (quarterly, utc(2025, 11, 30, 8)), (suspended, utc(2026, 5, 5, 5))):
        change = Change.objects.create(service_id=service.pk, from_status="processing", to_status="active")
        Change.objects.filter(pk=change.pk).update(created_at=activated)
    change = Change.objects.create(service_id=suspended.pk, from_status="active", to_status="suspended")
    Change.objects.filter(pk=change.pk).update(created_at=utc(2026, 8, 20, 7))

    with time_machine.travel(utc(2026, 11, 27, 12), tick=False):
        new = migrate(AFTER)

    rows = {row.pk: row for row in new.get_model("billing", "Service").objects.all()}
    assert (rows[monthly.pk].period_anchor, rows[monthly.pk].expires_at) == (utc(2026, 1, 31, 10), utc(2026, 11, 30, 10))
    assert (rows[quarterly.pk].period_anchor, rows[quarterly.pk].expires_at) == (utc(2025, 11, 30, 8), utc(2026, 11, 30, 8))
    assert (rows[suspended.pk].expires_at, rows[suspended.pk].suspended_at) == (utc(2026, 12, 5, 5), utc(2026, 8, 20, 7))
    assert (rows[ordered.pk].period_anchor, rows[ordered.pk].expires_at, rows[ordered.pk].suspended_at) == (None, None, None)
