"""Example 10 with dedicated IPs: the service the run deletes for non-payment gives its addresses back to IPmanager."""

import io
from datetime import UTC, date, datetime, time
from decimal import Decimal

import time_machine
from django.core.management import call_command

from billing.choices import PanelAction, ServiceStatus, SuspendReason
from billing.services import service_mark_paid
from ipam_sync.models import IPAssignment
from provisioning.models import Operation


def run_day(day, tasks):
    with time_machine.travel(datetime.combine(day, time(0, 30), UTC), tick=False):
        call_command("billing_daily", "--date", day.isoformat(), stdout=io.StringIO())
        tasks.run_all()


def test_a_service_deleted_for_nonpayment_releases_its_dedicated_ips(make_service, ipm, panel, tasks, settings):
    settings.TIME_ZONE = "UTC"
    service = make_service(ips=1, price=Decimal("160.00"))  # nothing on the balance to renew it with
    with time_machine.travel(datetime(2026, 1, 31, 10, tzinfo=UTC), tick=False):
        service_mark_paid(service=service)
        tasks.run_all()
    (address,) = IPAssignment.objects.filter(service=service).values_list("address", flat=True)
    assert [entry["ip"] for entry in ipm.allocated.values()] == [address]

    run_day(date(2026, 3, 3), tasks)  # expired 2026-02-28, unpaid: suspended after the 3 grace days
    service.refresh_from_db()
    assert (service.status, service.suspend_reason) == (ServiceStatus.SUSPENDED, SuspendReason.NONPAYMENT)

    run_day(date(2026, 3, 16), tasks)
    assert not Operation.objects.filter(service=service, action=PanelAction.CLOSE).exists()
    run_day(date(2026, 3, 17), tasks)

    service.refresh_from_db()
    assert service.status == ServiceStatus.DELETED
    assert ipm.allocated == {}
    assert panel.app.users == {}
    assert IPAssignment.objects.get(service=service).released_at is not None
