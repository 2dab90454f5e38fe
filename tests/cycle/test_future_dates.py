"""A real run never runs ahead of its date: it would charge, suspend and delete early. A dry run may look ahead."""

import io
from datetime import date

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError

from billing.choices import BillingOutcome, LedgerEntryKind, ServiceStatus
from billing.models import BillingRun, LedgerEntry
from billing.services import ledger_entry_add
from tests.cycle.conftest import utc
from tests.factories import ServiceFactory

pytestmark = pytest.mark.django_db


def test_a_run_for_tomorrow_is_refused_and_a_dry_run_for_it_shows_what_it_would_do():
    service = ServiceFactory(
        status=ServiceStatus.ACTIVE, price=10, period_anchor=utc(2026, 1, 31, 10), expires_at=utc(2026, 2, 28, 10)
    )
    ledger_entry_add(client=service.client, kind=LedgerEntryKind.TOPUP, amount=25)

    with time_machine.travel(utc(2026, 2, 24, 12), tick=False):
        with pytest.raises(CommandError, match=r"2026-02-25 is after today \(2026-02-24\): only a dry run may look ahead"):
            call_command("billing_daily", "--date", "2026-02-25", stdout=io.StringIO())
        out = io.StringIO()
        call_command("billing_daily", "--date", "2026-02-25", "--dry-run", stdout=out)

    assert not BillingRun.objects.filter(dry_run=False).exists()
    assert LedgerEntry.objects.filter(kind=LedgerEntryKind.CHARGE).count() == 0
    (run,) = BillingRun.objects.all()
    assert (run.day, run.renewed) == (date(2026, 2, 25), 1)
    assert list(run.items.values_list("service_id", "outcome")) == [(service.pk, BillingOutcome.WOULD)]
    assert f"service #{service.pk}" in out.getvalue()
    assert "Billing run for 2026-02-25 (dry run: nothing was changed): renewed 1" in out.getvalue()
