"""Ledger entries, the client list's balance and the Service admin, driven over HTTP as staff use them."""

import re
from decimal import Decimal

import pytest
from django.db import connection
from django.urls import reverse

from billing.choices import LedgerEntryKind, ServiceStatus
from billing.models import LedgerEntry, ServiceStatusChange
from billing.services import ledger_entry_add
from tests.factories import ClientFactory, ServiceFactory, UserFactory

LEDGER_ADD_URL = reverse("admin:billing_ledgerentry_add")
CLIENT_LIST_URL = reverse("admin:billing_client_changelist")


def form_errors(response):
    form = response.context["adminform"].form
    return " ".join(message for messages in form.errors.values() for message in messages)


def ledger_data(client, kind, amount, reference="bank transfer 42"):
    return {"client": client.pk, "kind": kind, "amount": amount, "reference": reference, "_save": "Save"}


@pytest.fixture
def customer(db):
    return ClientFactory(name="Acme")


def test_staff_top_up_is_added_by_the_staff_user_and_shows_in_the_client_balance(admin_client, staff_user, customer):
    response = admin_client.post(LEDGER_ADD_URL, ledger_data(customer, LedgerEntryKind.TOPUP, "500.00"))

    assert response.status_code == 302
    entry = LedgerEntry.objects.get()
    assert (entry.client, entry.kind, entry.amount, entry.reference) == (
        customer,
        LedgerEntryKind.TOPUP,
        Decimal("500.00"),
        "bank transfer 42",
    )
    assert entry.created_by == staff_user
    listing = admin_client.get(reverse("admin:billing_ledgerentry_changelist"))
    assert [row.pk for row in listing.context["cl"].result_list] == [entry.pk]

    clients = admin_client.get(CLIENT_LIST_URL)

    (row,) = clients.context["cl"].result_list
    assert row.balance == Decimal("500.00")
    (shown,) = re.findall(r'<td class="field-balance">([^<]*)</td>', clients.content.decode())
    assert shown == f"500.00\xa0{customer.currency}"  # the amount and its currency never split over two lines


def test_staff_negative_adjustment_is_added_and_lowers_the_balance(admin_client, staff_user, customer):
    ledger_entry_add(client=customer, kind=LedgerEntryKind.TOPUP, amount=Decimal("500.00"))

    response = admin_client.post(LEDGER_ADD_URL, ledger_data(customer, LedgerEntryKind.ADJUSTMENT, "-150.00", "goodwill reversal"))

    assert response.status_code == 302
    adjustment = LedgerEntry.objects.get(kind=LedgerEntryKind.ADJUSTMENT)
    assert (adjustment.amount, adjustment.created_by) == (Decimal("-150.00"), staff_user)
    (row,) = admin_client.get(CLIENT_LIST_URL).context["cl"].result_list
    assert row.balance == Decimal("350.00")


@pytest.mark.parametrize("query", ["", "acme.example", "Acme"], ids=["no-search", "search-by-user", "search-by-name"])
def test_client_list_balance_counts_each_entry_once_however_many_users_the_client_has(admin_client, customer, query):
    customer.users.add(UserFactory(username="one@acme.example"), UserFactory(username="two@acme.example"))
    ledger_entry_add(client=customer, kind=LedgerEntryKind.TOPUP, amount=Decimal("100.00"))
    ledger_entry_add(client=customer, kind=LedgerEntryKind.TOPUP, amount=Decimal("20.00"))

    response = admin_client.get(CLIENT_LIST_URL, {"q": query})

    (row,) = response.context["cl"].result_list
    assert row.balance == Decimal("120.00")


@pytest.mark.parametrize(
    ("kind", "amount", "message"),
    [
        (LedgerEntryKind.ADJUSTMENT, "0", "An adjustment cannot be zero."),
        (LedgerEntryKind.TOPUP, "-10.00", "The amount must be greater than zero."),
        (LedgerEntryKind.TOPUP, "0", "The amount must be greater than zero."),
        (LedgerEntryKind.REFUND, "-5.00", "The amount must be greater than zero."),
        (LedgerEntryKind.CHARGE, "10.00", "Select a valid choice. charge is not one of the available choices."),
        (LedgerEntryKind.TOPUP, "", "This field is required."),
    ],
    ids=["zero-adjustment", "negative-top-up", "zero-top-up", "negative-refund", "charge", "no-amount"],
)
def test_staff_ledger_entry_with_bad_amount_or_kind_is_refused_and_not_added(admin_client, customer, kind, amount, message):
    response = admin_client.post(LEDGER_ADD_URL, ledger_data(customer, kind, amount))

    assert response.status_code == 200
    assert message in form_errors(response)
    assert not LedgerEntry.objects.exists()


def test_ledger_add_form_does_not_offer_the_charge_kind(admin_client):
    response = admin_client.get(LEDGER_ADD_URL)

    offered = [value for value, _label in response.context["adminform"].form.fields["kind"].choices]
    assert offered == [LedgerEntryKind.TOPUP, LedgerEntryKind.REFUND, LedgerEntryKind.ADJUSTMENT]
    assert 'value="charge"' not in response.content.decode()


def test_ledger_entry_cannot_be_changed_through_the_admin(admin_client, customer):
    entry = ledger_entry_add(client=customer, kind=LedgerEntryKind.TOPUP, amount=Decimal("500.00"), reference="original")
    other = ClientFactory()

    response = admin_client.post(
        reverse("admin:billing_ledgerentry_change", args=[entry.pk]), ledger_data(other, LedgerEntryKind.TOPUP, "9999.00", "edited")
    )

    assert response.status_code == 403
    entry.refresh_from_db()
    assert (entry.client, entry.amount, entry.reference) == (customer, Decimal("500.00"), "original")


@pytest.mark.parametrize("prefix", ["", "/ru"], ids=["en", "ru"])
def test_save_and_view_lands_on_the_entry_shown_read_only_with_who_added_it(admin_client, staff_user, customer, prefix):
    data = {**ledger_data(customer, LedgerEntryKind.REFUND, "75.50", "refund of order 7"), "_continue": "Save and view"}
    data.pop("_save")

    response = admin_client.post(prefix + LEDGER_ADD_URL, data, follow=True)

    entry = LedgerEntry.objects.get()
    assert response.redirect_chain == [(f"{prefix}/admin/billing/ledgerentry/{entry.pk}/change/", 302)]
    assert response.status_code == 200
    page = response.content.decode()
    assert not re.findall(r'<(?:input(?! type="hidden")|select|textarea)\b', page.split('id="content-main"')[1])
    shown = [re.sub(r"<[^>]+>", "", value) for value in re.findall(r'<div class="readonly">(.*?)</div>', page)]
    client, _kind, amount, reference, created_by, _created_at = shown
    assert (client, amount, reference, created_by) == ("Acme", "75,50" if prefix else "75.50", "refund of order 7", "staff@example.com")


@pytest.mark.parametrize("method", ["get", "post"])
def test_ledger_entry_cannot_be_deleted_through_the_admin(admin_client, customer, method):
    entry = ledger_entry_add(client=customer, kind=LedgerEntryKind.TOPUP, amount=Decimal("500.00"))

    response = getattr(admin_client, method)(reverse("admin:billing_ledgerentry_delete", args=[entry.pk]), {"post": "yes"})

    assert response.status_code == 403
    assert LedgerEntry.objects.filter(pk=entry.pk).exists()


def test_ledger_changelist_offers_no_bulk_delete(admin_client, customer):
    ledger_entry_add(client=customer, kind=LedgerEntryKind.TOPUP, amount=Decimal("500.00"))

    response = admin_client.get(reverse("admin:billing_ledgerentry_changelist"))

    assert "delete_selected" not in response.content.decode()


# --- Service ---------------------------------------------------------------------------------


def service_change_data(service, **overrides):
    data = {
        "client": service.client_id,
        "tariff": service.tariff_id,
        "domain": service.domain,
        "period": service.period,
        "price": service.price,
        "setup_fee": service.setup_fee,
        "ordered_by": "",
        "expires_at_0": "",
        "expires_at_1": "",
        "resources-TOTAL_FORMS": "0",
        "resources-INITIAL_FORMS": "0",
        "resources-MIN_NUM_FORMS": "0",
        "resources-MAX_NUM_FORMS": "1000",
        "status_changes-TOTAL_FORMS": "0",
        "status_changes-INITIAL_FORMS": "0",
        "status_changes-MIN_NUM_FORMS": "0",
        "status_changes-MAX_NUM_FORMS": "0",
        "_save": "Save",
    }
    data.update(overrides)
    return data


def test_service_change_page_never_renders_the_panel_password(admin_client):
    service = ServiceFactory(panel_username="user117")
    service.panel_password = "s3cret-pass"
    service.save()
    with connection.cursor() as cursor:
        cursor.execute("SELECT panel_password FROM billing_service WHERE id = %s", [service.pk])
        (ciphertext,) = cursor.fetchone()

    response = admin_client.get(reverse("admin:billing_service_change", args=[service.pk]))

    assert response.status_code == 200
    html = response.content.decode()
    assert "user117" in html
    assert "s3cret-pass" not in html
    assert ciphertext not in html
    assert "panel_password" not in response.context["adminform"].form.fields


def test_service_status_is_read_only_in_the_admin(admin_client):
    service = ServiceFactory(domain="old.example.com")
    assert service.status == ServiceStatus.ORDERED

    response = admin_client.post(
        reverse("admin:billing_service_change", args=[service.pk]),
        service_change_data(service, domain="new.example.com", status=ServiceStatus.ACTIVE, suspend_reason="staff"),
    )

    assert response.status_code == 302
    service.refresh_from_db()
    assert service.domain == "old.example.com"  # read-only too: see tests/billing/test_admin_service_change.py
    assert (service.status, service.suspend_reason) == (ServiceStatus.ORDERED, "")
    assert not ServiceStatusChange.objects.exists()


def test_service_panel_password_survives_a_save_of_the_change_form(admin_client):
    service = ServiceFactory()
    service.panel_password = "s3cret-pass"
    service.save()

    response = admin_client.post(
        reverse("admin:billing_service_change", args=[service.pk]), service_change_data(service, panel_password="")
    )

    assert response.status_code == 302
    service.refresh_from_db()
    assert service.panel_password == "s3cret-pass"
