"""A service's first period starts when its account is created; every later one ends on that day of the month."""

from datetime import UTC, datetime

import time_machine

from billing.choices import PanelAction, ServiceStatus
from billing.services import service_action_request, service_mark_paid


def utc(*parts):
    return datetime(*parts, tzinfo=UTC)


def test_the_account_created_on_31_january_is_paid_until_28_february(make_service, panel, tasks, settings):
    settings.TIME_ZONE = "UTC"
    service = make_service()
    service_mark_paid(service=service)

    with time_machine.travel(utc(2026, 1, 31, 10), tick=False):
        tasks.run_all()

    service.refresh_from_db()
    assert service.status == ServiceStatus.ACTIVE
    assert (service.period_anchor, service.expires_at) == (utc(2026, 1, 31, 10), utc(2026, 2, 28, 10))


def test_an_unpaid_order_has_no_period_yet(make_service):
    service = make_service()

    assert (service.period_anchor, service.expires_at) == (None, None)


def test_a_suspension_and_resumption_keep_the_anchor_and_the_expiry(make_service, panel, tasks, settings):
    settings.TIME_ZONE = "UTC"
    service = make_service()
    service_mark_paid(service=service)
    with time_machine.travel(utc(2026, 1, 31, 10), tick=False):
        tasks.run_all()

    with time_machine.travel(utc(2026, 2, 10, 9), tick=False):
        service_action_request(service=service, action=PanelAction.SUSPEND)
        tasks.run_all()
        service_action_request(service=service, action=PanelAction.RESUME)
        tasks.run_all()

    service.refresh_from_db()
    assert service.status == ServiceStatus.ACTIVE
    assert (service.period_anchor, service.expires_at) == (utc(2026, 1, 31, 10), utc(2026, 2, 28, 10))
