"""The billing cycle against the ISPmanager emulator: services opened, suspended, resumed and deleted for real."""

import io
from datetime import UTC, date, datetime, time
from decimal import Decimal

import pytest
import time_machine
from django.core.management import call_command

from billing.choices import LedgerEntryKind
from billing.models import LedgerEntry
from billing.services import ledger_entry_add, service_mark_paid, service_renew
from provisioning.models import Operation
from tests.provisioning.conftest import make_service, module, panel, tariff  # noqa: F401 (fixtures)


def utc(*parts):
    return datetime(*parts, tzinfo=UTC)


def charges(service):
    """The charges after the setup of the `activated` fixture (its own first payment and renewals left out)."""
    return list(
        LedgerEntry.objects.filter(client=service.client, kind=LedgerEntryKind.CHARGE, created_at__gte=utc(2026, 2, 1))
        .order_by("pk")
        .values_list("amount", flat=True)
    )


def operations(service, action):
    return Operation.objects.filter(service=service, action=action).count()


@pytest.fixture(autouse=True)
def billing_in_utc(settings):
    settings.TIME_ZONE = "UTC"


@pytest.fixture
def activated(make_service, tasks):  # noqa: F811 (the fixture imported above)
    """A service of 10.00 a month whose account the emulator created on 2026-01-31 10:00 (paid until 2026-02-28 10:00).

    `renewals` renews it that many times at once (2026-01-31 + 1 gives 2026-03-31); `balance` is what the
    client then has.
    """

    def make(*, balance="0.00", renewals=0, **fields):
        service = make_service(price=Decimal("10.00"), **fields)
        with time_machine.travel(utc(2026, 1, 31, 10), tick=False):
            service_mark_paid(service=service)
            tasks.run_all()
            for _ in range(renewals):
                ledger_entry_add(client=service.client, kind=LedgerEntryKind.TOPUP, amount=Decimal("10.00"))
                service_renew(service=service)
            if Decimal(balance):
                ledger_entry_add(client=service.client, kind=LedgerEntryKind.TOPUP, amount=Decimal(balance))
            tasks.run_all()
        service.refresh_from_db()
        return service

    return make


@pytest.fixture
def run_day(tasks):
    """`run_day(date)`: the daily run for that date at 00:30 UTC, then the worker (panel calls, emails); its output."""

    def run(day: date, *options):
        with time_machine.travel(datetime.combine(day, time(0, 30), UTC), tick=False):
            out = io.StringIO()
            call_command("billing_daily", "--date", day.isoformat(), *options, stdout=out)
            tasks.run_all()
        return out.getvalue()

    return run


@pytest.fixture
def on(tasks):
    """`with on(moment):` the clock at that moment; the worker runs when the block ends."""

    class At:
        def __init__(self, moment):
            self.travel = time_machine.travel(moment, tick=False)

        def __enter__(self):
            self.travel.start()

        def __exit__(self, *exc):
            try:
                if exc[0] is None:
                    tasks.run_all()
            finally:
                self.travel.stop()

    return At
