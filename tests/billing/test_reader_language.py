"""Texts stored in the database are read in the reader's language, whoever wrote them and in whatever language.

And amounts are written one way per language on every page: en 1,000.00 RUB, ru 1 000,00 RUB (non-breaking spaces).
"""

import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client as Browser
from django.urls import reverse
from django.utils import translation

from billing.choices import LedgerEntryKind, PanelAction, ServiceStatus
from billing.models import LedgerEntry, ServiceStatusChange
from billing.payments import payment_confirm, payment_start
from billing.services import ledger_entry_add, service_action_request, service_pay
from tests.factories import ClientFactory, ServiceFactory, TariffPlanFactory, UserFactory

NBSP = "\xa0"


def url(name, language, *args):
    with translation.override(language):
        return reverse(name, args=args)


def text_of(response) -> str:
    """The page's text without tags, whitespace kept as it is (non-breaking spaces stay)."""
    return re.sub(r"<[^>]+>", " ", response.content.decode())


def raw_column(model, column: str, pk: int) -> str:
    """What the database holds, not what the field reads back."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {model._meta.db_table} WHERE id = %s", [pk])  # noqa: S608 - names from the model
        return cursor.fetchone()[0]


@pytest.fixture
def account(db):
    """A client of each language, with a user, 1000.00 on the balance and an ordered service of 350.00."""

    def make(language):
        user = UserFactory(username=f"{language}-reader@example.com")
        client = ClientFactory(name="Reader", email=user.email, language=language)
        client.users.add(user)
        ledger_entry_add(client=client, kind=LedgerEntryKind.TOPUP, amount=Decimal("1000.00"))
        service = ServiceFactory(client=client, tariff=TariffPlanFactory(), price=Decimal("300.00"), setup_fee=Decimal("50.00"))
        return user, client, service

    return make


# (the client's language, the language active while the text is written): every mix a site sees.
WRITERS = [("ru", "ru"), ("ru", "en"), ("en", "ru"), ("en", "en")]


@pytest.mark.parametrize(("client_language", "writer_language"), WRITERS)
def test_a_first_payment_reads_in_the_language_of_each_balance_page(client, account, client_language, writer_language):
    user, _, service = account(client_language)
    with translation.override(writer_language):
        service_pay(service=service, by=user)
    client.force_login(user)

    english = text_of(client.get(url("balance", "en")))
    russian = text_of(client.get(url("balance", "ru")))

    assert f"Service #{service.pk}, first payment" in english
    assert "Услуга" not in english
    assert f"Услуга #{service.pk}, первый платёж" in russian
    assert "first payment" not in russian
    # Stored as a message and its parameters, not as the text of the moment.
    entry = LedgerEntry.objects.get(kind=LedgerEntryKind.CHARGE)
    assert raw_column(LedgerEntry, "reference", entry.pk) == (
        '{"msgid": "Service #%(id)d, first payment", "params": {"id": ' + str(service.pk) + "}}"
    )


@pytest.mark.parametrize(("client_language", "writer_language"), WRITERS)
def test_a_confirmed_payment_reads_in_the_language_of_each_balance_page(client, account, settings, client_language, writer_language):
    settings.PAYMENT_GATEWAYS = ["manual"]
    user, customer, _ = account(client_language)
    payment, _ = payment_start(client=customer, gateway_code="manual", amount=Decimal("1234.50"), by=user)
    with translation.override(writer_language):
        payment_confirm(payment=payment)
    client.force_login(user)

    english = text_of(client.get(url("balance", "en")))
    russian = text_of(client.get(url("balance", "ru")))

    assert f"Payment {payment.reference}" in english
    assert "Платёж" not in english
    assert f"Платёж {payment.reference}" in russian
    assert f"Payment {payment.reference}" not in russian
    # The total and the new entry, as each language writes amounts.
    assert f"Balance: 2,234.50{NBSP}RUB" in english
    assert f"1,234.50{NBSP}RUB" in english
    assert f"2{NBSP}234,50{NBSP}RUB" in russian
    assert f"1{NBSP}234,50{NBSP}RUB" in russian


@pytest.mark.parametrize("writer_language", ["ru", "en"])
def test_status_reasons_read_in_the_language_of_each_admin_page(admin_client, account, writer_language):
    _, _, paid = account("ru")
    _, _, cancelled = account("en")
    with translation.override(writer_language):
        service_pay(service=paid, by=None)
        service_action_request(service=cancelled, action=PanelAction.CLOSE)

    reasons = [(paid, "paid", "оплачена"), (cancelled, "cancelled before payment", "отменена до оплаты")]
    for service, english_reason, russian_reason in reasons:
        english = admin_client.get(url("admin:billing_service_change", "en", service.pk)).content.decode()
        russian = admin_client.get(url("admin:billing_service_change", "ru", service.pk)).content.decode()
        assert f">{english_reason}<" in english
        assert russian_reason not in english
        assert f">{russian_reason}<" in russian
        assert f">{english_reason}<" not in russian
    assert ServiceStatusChange.objects.get(service=cancelled).to_status == ServiceStatus.DELETED
    change = ServiceStatusChange.objects.get(service=paid)
    assert raw_column(ServiceStatusChange, "reason", change.pk) == '{"msgid": "paid", "params": {}}'


def test_text_typed_by_staff_is_kept_as_typed_in_every_language(client, account):
    user, customer, _ = account("ru")
    ledger_entry_add(client=customer, kind=LedgerEntryKind.ADJUSTMENT, amount=Decimal("-0.50"), reference="Округление, Paid")
    client.force_login(user)

    for language in ("en", "ru"):
        assert "Округление, Paid" in text_of(client.get(url("balance", language)))


@pytest.mark.parametrize(
    ("language", "balance", "entry"),
    [("en", f"1,234,567.50{NBSP}RUB", f"-1,000.00{NBSP}RUB"), ("ru", f"1{NBSP}234{NBSP}567,50{NBSP}RUB", f"-1{NBSP}000,00{NBSP}RUB")],
)
def test_amounts_are_grouped_the_languages_way_on_the_client_pages_and_in_the_admin(admin_client, account, language, balance, entry):
    user, customer, _ = account("en")
    ledger_entry_add(client=customer, kind=LedgerEntryKind.TOPUP, amount=Decimal("1234567.50"))
    ledger_entry_add(client=customer, kind=LedgerEntryKind.CHARGE, amount=Decimal("1000.00"))
    client = Browser()  # admin_client is the staff's session
    client.force_login(user)

    dashboard = client.get(url("client_area", language)).content.decode()
    history = text_of(client.get(url("balance", language)))
    clients = admin_client.get(url("admin:billing_client_changelist", language)).content.decode()
    ledger = admin_client.get(url("admin:billing_ledgerentry_changelist", language)).content.decode()

    assert f'<p class="amount">{balance}</p>' in dashboard
    assert balance in history
    assert entry in history
    assert f'<td class="field-balance">{balance}</td>' in clients
    assert entry.removesuffix(f"{NBSP}RUB") in ledger


def test_service_numbers_are_never_grouped_like_amounts(client, account):
    user, customer, _ = account("ru")
    service = ServiceFactory(pk=12345, client=customer, tariff=TariffPlanFactory(), price=Decimal("300.00"))
    service_pay(service=service, by=user)
    client.force_login(user)

    for language in ("en", "ru"):
        page = client.get(url("service_detail", language, service.pk)).content.decode()
        listing = client.get(url("client_area", language)).content.decode()
        history = text_of(client.get(url("balance", language)))
        assert "#12345" in page
        assert ">12345</a>" in listing
        assert re.search(r"#12345\b", history)
        assert "12,345" not in page + listing + history
        assert f"12{NBSP}345" not in page + listing + history
