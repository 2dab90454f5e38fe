"""Changing a service mid-period: the issue's examples 1-5 with their numbers, and every refusal changing nothing."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.test import Client as DjangoClient
from django.urls import reverse

from billing.changes import ChangeNotCovered, service_change, service_change_quote
from billing.choices import DocumentKind, LedgerEntryKind, PanelAction, ResourceKind, ServiceStatus
from billing.models import Document, DocumentLine, LedgerEntry, ServiceStatusChange
from billing.selectors import client_balance
from billing.services import InsufficientFunds, NothingToDo, ledger_entry_add, service_renew, service_status_change
from provisioning.models import Operation
from tests.factories import (
    ClientFactory,
    OperationFactory,
    ProcessingModuleFactory,
    ServiceFactory,
    ServiceResourceFactory,
    StaffUserFactory,
    TariffPlanFactory,
    TariffResourceFactory,
)

pytestmark = pytest.mark.django_db

MAY_16 = datetime(2026, 5, 16, 12, 0, tzinfo=UTC)
MAY_24 = datetime(2026, 5, 24, 9, 0, tzinfo=UTC)
EXPIRES = datetime(2026, 5, 31, 10, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def billing_in_utc(settings):
    settings.TIME_ZONE = "UTC"


@pytest.fixture
def module(db):
    return ProcessingModuleFactory()


def tariff(module, name, price, **fields):
    plan = TariffPlanFactory(name=name, processing_module=module, monthly_price=Decimal(price), **fields)
    TariffResourceFactory(tariff=plan, kind=ResourceKind.DATABASES, included=1, unit_price=Decimal("1.50"), max_quantity=10)
    return plan


@pytest.fixture
def plans(module):
    return {name: tariff(module, name, price) for name, price in (("T10", "10.00"), ("T20", "20.00"), ("T30", "30.00"))}


def s8(plan, balance="50.00", databases=1):
    """S8: anchored 2026-01-31, current period 2026-04-30 - 2026-05-31 (31 days)."""
    service = ServiceFactory(
        tariff=plan,
        client=ClientFactory(currency=plan.currency),
        status=ServiceStatus.ACTIVE,
        price=plan.prices.get().price + (databases - 1) * Decimal("1.50"),
        period_anchor=datetime(2026, 1, 31, 10, tzinfo=UTC),
        expires_at=EXPIRES,
        panel_username="user8",
    )
    ServiceResourceFactory(service=service, kind=ResourceKind.DATABASES, quantity=databases)
    if Decimal(balance):
        ledger_entry_add(client=service.client, kind=LedgerEntryKind.TOPUP, amount=Decimal(balance))
    return service


def entries(service, kind):
    return list(LedgerEntry.objects.filter(client=service.client, kind=kind).order_by("pk").values_list("amount", flat=True))


def set_limits_queued(service):
    return Operation.objects.filter(service=service, action=PanelAction.SET_LIMITS).count()


def test_example_1_an_upgrade_charges_the_days_left_and_keeps_the_expiry(plans):
    service = s8(plans["T10"])

    with time_machine.travel(MAY_16, tick=False):
        assert service_change_quote(service=service, tariff=plans["T20"]).amount == Decimal("4.84")
        service_change(service=service, tariff=plans["T20"])

    service.refresh_from_db()
    assert service.tariff == plans["T20"]
    assert service.expires_at == EXPIRES
    assert service.price == Decimal("20.00")
    assert entries(service, LedgerEntryKind.CHARGE) == [Decimal("-4.84")]
    (invoice,) = Document.objects.filter(kind=DocumentKind.INVOICE, service=service)
    (line,) = invoice.lines.all()
    assert (str(line.description), line.period_start, line.period_end, line.gross) == (
        "T10 → T20",
        date(2026, 5, 16),
        date(2026, 5, 31),
        Decimal("4.84"),
    )
    assert set_limits_queued(service) == 1
    assert "Price per period: 10.00" in str(service.status_changes.last().reason)

    Operation.objects.filter(service=service).delete()  # the panel has applied the limits
    with time_machine.travel(datetime(2026, 5, 25, tzinfo=UTC), tick=False):
        service_renew(service=service)
    assert entries(service, LedgerEntryKind.CHARGE) == [Decimal("-4.84"), Decimal("-20.00")]


def test_example_2_a_downgrade_credits_the_days_left_with_a_credit_note(plans):
    service = s8(plans["T20"])

    with time_machine.travel(MAY_16, tick=False):
        service_change(service=service, tariff=plans["T10"])

    service.refresh_from_db()
    assert (service.tariff, service.price, service.expires_at) == (plans["T10"], Decimal("10.00"), EXPIRES)
    assert entries(service, LedgerEntryKind.REFUND) == [Decimal("4.84")]
    (note,) = Document.objects.filter(kind=DocumentKind.CREDIT_NOTE, service=service)
    assert note.gross == Decimal("-4.84")
    assert [str(line.description) for line in note.lines.all()] == ["T20 → T10"]
    assert client_balance(client=service.client) == Decimal("54.84")
    assert set_limits_queued(service) == 1


def test_example_2_with_the_downgrade_credit_off_nothing_is_credited(plans, settings):
    settings.BILLING_DOWNGRADE_CREDIT = False
    service = s8(plans["T20"])

    with time_machine.travel(MAY_16, tick=False):
        assert service_change_quote(service=service, tariff=plans["T10"]).credit == Decimal("0.00")
        service_change(service=service, tariff=plans["T10"])

    service.refresh_from_db()
    assert service.tariff == plans["T10"]
    assert entries(service, LedgerEntryKind.REFUND) == []
    assert not Document.objects.filter(kind=DocumentKind.CREDIT_NOTE).exists()
    assert set_limits_queued(service) == 1


def test_example_3_a_second_change_is_priced_from_the_tariffs_not_from_the_first_charge(plans):
    service = s8(plans["T10"])
    with time_machine.travel(MAY_16, tick=False):
        service_change(service=service, tariff=plans["T20"])
    Operation.objects.filter(service=service).delete()  # the panel has applied the first change

    with time_machine.travel(MAY_24, tick=False):
        service_change(service=service, tariff=plans["T30"])

    assert entries(service, LedgerEntryKind.CHARGE) == [Decimal("-4.84"), Decimal("-2.26")]
    line = DocumentLine.objects.order_by("pk").last()
    assert (str(line.description), line.period_start, line.gross) == ("T20 → T30", date(2026, 5, 24), Decimal("2.26"))
    service.refresh_from_db()
    assert (service.price, service.expires_at) == (Decimal("30.00"), EXPIRES)


def test_example_4_extra_resources_are_prorated_and_priced_into_the_next_renewal(plans):
    service = s8(plans["T10"])

    with time_machine.travel(MAY_16, tick=False):
        service_change(service=service, quantities={ResourceKind.DATABASES: 3})

    assert entries(service, LedgerEntryKind.CHARGE) == [Decimal("-1.45")]
    service.refresh_from_db()
    assert service.resources.get(kind=ResourceKind.DATABASES).quantity == 3
    assert service.price == Decimal("13.00")
    assert str(DocumentLine.objects.get(document__kind=DocumentKind.INVOICE).description) == "T10: resources; Databases 1 → 3"
    assert set_limits_queued(service) == 1


def test_example_5_an_upgrade_the_balance_does_not_cover_changes_nothing(plans):
    service = s8(plans["T10"], balance="1.00")

    with time_machine.travel(MAY_16, tick=False), pytest.raises(InsufficientFunds) as refused:
        service_change(service=service, tariff=plans["T20"])

    assert isinstance(refused.value, ChangeNotCovered)
    assert refused.value.missing == Decimal("3.84")
    assert "4.84\xa0RUB needed, 1.00\xa0RUB on the balance" in refused.value.messages[0]
    service.refresh_from_db()
    assert (service.tariff, service.price) == (plans["T10"], Decimal("10.00"))
    assert entries(service, LedgerEntryKind.CHARGE) == []
    assert not Document.objects.filter(kind=DocumentKind.INVOICE).exists()
    assert not Operation.objects.filter(service=service).exists()
    assert not ServiceStatusChange.objects.filter(service=service).exists()


def test_a_double_submit_changes_and_charges_once(plans):
    service = s8(plans["T10"])
    seen = service.price

    with time_machine.travel(MAY_16, tick=False):
        service_change(service=service, tariff=plans["T20"], expected_price=seen)
        with pytest.raises(NothingToDo, match="has just been changed"):
            service_change(service=service, tariff=plans["T20"], expected_price=seen)

    assert entries(service, LedgerEntryKind.CHARGE) == [Decimal("-4.84")]


def refused(service, match, **change):
    before = (entries(service, LedgerEntryKind.CHARGE), Operation.objects.count(), Document.objects.count())
    with time_machine.travel(MAY_16, tick=False), pytest.raises(ValidationError, match=match):
        service_change(service=service, **change)
    service.refresh_from_db()
    assert (entries(service, LedgerEntryKind.CHARGE), Operation.objects.count(), Document.objects.count()) == before
    assert service.resources.get(kind=ResourceKind.DATABASES).quantity == 1


def test_a_tariff_of_another_module_or_product_is_refused(plans):
    service = s8(plans["T10"])
    elsewhere = tariff(ProcessingModuleFactory(), "T20 elsewhere", "20.00")
    refused(service, "cannot be changed to this tariff", tariff=elsewhere)
    storage = tariff(ProcessingModuleFactory(product_type="storage"), "Storage", "20.00", product_type="storage")
    refused(service, "cannot be changed to this tariff", tariff=storage)
    assert service.tariff == plans["T10"]


def test_a_hidden_or_disabled_tariff_is_refused(plans, module):
    service = s8(plans["T10"])
    refused(service, "cannot be changed to this tariff", tariff=tariff(module, "Hidden", "20.00", is_visible=False))
    refused(service, "cannot be changed to this tariff", tariff=tariff(module, "Off", "20.00", is_enabled=False))


def test_allowed_changes_restrict_the_choice(plans):
    plans["T10"].allowed_changes.set([plans["T30"]])
    service = s8(plans["T10"])

    refused(service, "cannot be changed to this tariff", tariff=plans["T20"])
    with time_machine.travel(MAY_16, tick=False):
        service_change(service=service, tariff=plans["T30"])
    assert entries(service, LedgerEntryKind.CHARGE) == [Decimal("-9.68")]


@pytest.mark.parametrize(("quantity", "match"), [(0, "at least 1"), (11, "at most 10"), ("3", "whole number")])
def test_quantities_out_of_range_are_refused(plans, quantity, match):
    refused(s8(plans["T10"]), match, quantities={ResourceKind.DATABASES: quantity})


def test_a_resource_the_tariff_does_not_have_is_refused(plans):
    refused(s8(plans["T10"]), "cannot be ordered with this tariff", quantities={ResourceKind.DISK: 5000})


def test_dedicated_ips_are_refused_when_the_tariff_does_not_offer_them(plans):
    refused(s8(plans["T10"]), "does not offer dedicated IP addresses", quantities={ResourceKind.DEDICATED_IPV4: 1})


def test_a_service_that_is_not_active_is_refused(plans):
    service = s8(plans["T10"])
    service.status = ServiceStatus.SUSPENDED
    service.save()
    refused(service, "only an active service can be changed", tariff=plans["T20"])


def test_a_service_busy_with_another_operation_is_refused(plans):
    service = s8(plans["T10"])
    OperationFactory(service=service, action=PanelAction.SUSPEND)
    refused(service, "waiting for", tariff=plans["T20"])


def test_no_change_at_all_is_nothing_to_do(plans):
    service = s8(plans["T10"])
    with time_machine.travel(MAY_16, tick=False), pytest.raises(NothingToDo):
        service_change(service=service, tariff=plans["T10"], quantities={ResourceKind.DATABASES: 1})


@pytest.fixture
def mine(plans, customer):
    service = s8(plans["T10"])
    service.client = customer
    service.save()
    ledger_entry_add(client=customer, kind=LedgerEntryKind.TOPUP, amount=Decimal("50.00"))
    return service


def test_the_client_sees_the_exact_charge_then_confirms_the_upgrade(logged_in, mine, plans):
    page_url = reverse("service_change", args=[mine.pk])
    with time_machine.travel(MAY_16, tick=False):
        assert logged_in.get(reverse("service_detail", args=[mine.pk])).content.decode().count(page_url) == 1
        assert 'name="tariff"' in logged_in.get(page_url).content.decode()
        preview = logged_in.get(page_url, {"tariff": plans["T20"].pk, "price": "10.00"})
        assert "4.84" in preview.content.decode()
        assert entries(mine, LedgerEntryKind.CHARGE) == []

        confirmed = logged_in.post(page_url, {"tariff": plans["T20"].pk, "price": "10.00", "confirm": "yes"})
        again = logged_in.post(page_url, {"tariff": plans["T20"].pk, "price": "10.00", "confirm": "yes"})

    assert confirmed.status_code == again.status_code == 302
    assert entries(mine, LedgerEntryKind.CHARGE) == [Decimal("-4.84")]
    mine.refresh_from_db()
    assert mine.tariff == plans["T20"]


def test_the_live_preview_answers_json_and_refuses_garbage_without_an_error_page(logged_in, mine, plans):
    url = reverse("service_change_preview", args=[mine.pk])
    with time_machine.travel(MAY_16, tick=False):
        answer = logged_in.get(url, {"tariff": plans["T20"].pk, ResourceKind.DATABASES: "3"})
        assert answer.status_code == 200
        assert answer.json()["charge"] == "6.29"  # (23.00 - 10.00) x 15/31
        garbage = ({"tariff": "x"}, {"tariff": "99999999999999999999"}, {"tariff": plans["T20"].pk, ResourceKind.DATABASES: "1e9"}, {})
        for values in garbage:
            assert logged_in.get(url, values).status_code == 400
        assert logged_in.get(url, {"tariff": plans["T10"].pk}).json()["errors"]


def test_another_clients_service_is_a_404_and_a_post_needs_the_csrf_token(logged_in, plans, mine):
    other = s8(plans["T10"])
    assert logged_in.get(reverse("service_change", args=[other.pk])).status_code == 404
    assert logged_in.get(reverse("service_change_preview", args=[other.pk]), {"tariff": plans["T20"].pk}).status_code == 404
    strict = DjangoClient(enforce_csrf_checks=True)
    strict.force_login(mine.client.users.get())
    assert strict.post(reverse("service_change", args=[mine.pk]), {"tariff": plans["T20"].pk, "confirm": "yes"}).status_code == 403
    assert entries(mine, LedgerEntryKind.CHARGE) == []


def test_staff_see_the_same_preview_and_change_the_tariff_in_the_admin(client, plans):
    service = s8(plans["T10"])
    staff = StaffUserFactory()
    client.force_login(staff)
    url = reverse("admin:billing_service_change_plan", args=[service.pk])
    with time_machine.travel(MAY_16, tick=False):
        assert url in client.get(reverse("admin:billing_service_change", args=[service.pk])).content.decode()
        preview = client.get(url, {"tariff": plans["T20"].pk, "price": "10.00"}).content.decode()
        assert "Charged now: 4.84" in preview
        assert client.post(url, {"tariff": plans["T20"].pk, "price": "10.00", "confirm": "yes"}).status_code == 302

    assert entries(service, LedgerEntryKind.CHARGE) == [Decimal("-4.84")]
    assert service.status_changes.get().changed_by == staff
    assert set_limits_queued(service) == 1


def deleted_on_may_16(service):
    with time_machine.travel(MAY_16, tick=False):
        service_status_change(service=service, to=ServiceStatus.DELETED)


def test_closing_refunds_nothing_by_default(plans):
    service = s8(plans["T10"])
    deleted_on_may_16(service)
    assert entries(service, LedgerEntryKind.REFUND) == []


def test_closing_with_prorata_credits_the_unused_whole_days_once(plans, settings):
    settings.BILLING_REFUND_ON_CLOSE = "prorata"
    service = s8(plans["T10"])

    deleted_on_may_16(service)

    assert entries(service, LedgerEntryKind.REFUND) == [Decimal("4.52")]  # 10.00 x 14/31: May 17 to May 31
    (line,) = DocumentLine.objects.filter(document__kind=DocumentKind.CREDIT_NOTE)
    assert (line.period_start, line.period_end, line.gross) == (date(2026, 5, 17), date(2026, 5, 31), Decimal("-4.52"))


def test_a_change_emits_service_changed_with_the_new_tariff_and_price_and_a_refused_one_nothing(plans):
    from billing.webhooks.models import WebhookEvent

    service = s8(plans["T10"])
    poor = s8(plans["T10"], balance="1.00")

    with time_machine.travel(MAY_16, tick=False):
        service_change(service=service, tariff=plans["T20"])
        with pytest.raises(ChangeNotCovered):
            service_change(service=poor, tariff=plans["T30"])

    (event,) = WebhookEvent.objects.filter(type="service.changed")
    assert (event.data["id"], event.data["tariff"]["id"], event.data["price"]) == (service.pk, plans["T20"].pk, "20.00")
