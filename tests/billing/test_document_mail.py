"""Each new document emailed to its client with its PDF: after the commit, by the worker, once, retried by cron for three days."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.db import transaction

from billing.choices import LedgerEntryKind
from billing.document_mail import document_email_send, documents_email_pending
from billing.models import Document, LedgerEntry
from billing.refunds import invoice_refund
from billing.selectors import client_balance
from billing.services import ledger_entry_add
from tests.conftest import postgres_only, run_at_once
from tests.factories import ClientFactory, StaffUserFactory

pytestmark = pytest.mark.django_db

SITE = "https://billing.example.com"
NOW = datetime(2026, 5, 16, 12, tzinfo=UTC)
NBSP = "\xa0"


class MailServerDown(BaseEmailBackend):
    def send_messages(self, email_messages):
        raise ConnectionRefusedError(111, "Connection refused")


@pytest.fixture(autouse=True)
def emailing(settings):
    settings.BILLING_EMAIL_DOCUMENTS = True
    settings.SITE_URL = SITE
    settings.TIME_ZONE = "UTC"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


@pytest.fixture(autouse=True)
def now():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def ann():
    return ClientFactory(name="Ann's Bakery", email="ann@example.com")


def committed(capture, client, kind, amount, **extra):
    """A movement of money as the services make it: in a transaction, its email queued when that commits."""
    with capture(execute=True), transaction.atomic():
        return ledger_entry_add(client=client, kind=kind, amount=Decimal(amount), **extra)


def sent():
    return [(email.to, email.subject) for email in mail.outbox]


def test_a_top_up_a_charge_and_a_refund_each_email_their_document_with_its_pdf(ann, tasks, django_capture_on_commit_callbacks):
    capture = django_capture_on_commit_callbacks
    committed(capture, ann, LedgerEntryKind.TOPUP, "100.00", reference="Bank transfer 17")
    charge = committed(capture, ann, LedgerEntryKind.CHARGE, "30.05", reference="Extra disk")
    with capture(execute=True):
        invoice_refund(invoice=charge.document, amount=Decimal("10.00"), by=StaffUserFactory(), idempotency_key="r-1")
    invoice = charge.document

    assert [result.task.name for result in tasks.pending()] == ["send_document"] * 3
    assert mail.outbox == []  # nothing is sent inside the request or the billing run: the worker sends
    assert tasks.run_all() == 3

    assert sent() == [
        (["ann@example.com"], "Receipt RCP-2026-00001"),
        (["ann@example.com"], "Invoice INV-2026-00001"),
        (["ann@example.com"], "Credit note CN-2026-00001"),
    ]
    receipt_email, invoice_email, credit_email = mail.outbox
    assert invoice_email.body == (
        "Hello, Ann's Bakery!\n\n"
        f"Your invoice INV-2026-00001 for 30.05{NBSP}RUB, paid from your balance, is attached.\n\n"
        f"Your document: {SITE}/account/invoices/{invoice.pk}/\n"
    )
    assert f"Your receipt RCP-2026-00001 is attached: 100.00{NBSP}RUB is added to your balance." in receipt_email.body
    assert f"Your credit note CN-2026-00001 is attached: 10.00{NBSP}RUB is credited to your balance." in credit_email.body
    html, html_type = invoice_email.alternatives[0]
    assert html_type == "text/html"
    assert f'<a href="{SITE}/account/invoices/{invoice.pk}/">Your document</a>' in html
    assert "Hello, Ann&#x27;s Bakery!" in html  # the client's name is escaped in HTML
    (name, pdf, pdf_type) = invoice_email.attachments[0]
    assert (name, pdf_type) == ("INV-2026-00001.pdf", "application/pdf")
    assert pdf.startswith(b"%PDF-")
    assert [email.attachments[0][0] for email in mail.outbox] == ["RCP-2026-00001.pdf", "INV-2026-00001.pdf", "CN-2026-00001.pdf"]
    assert Document.objects.filter(emailed_at=NOW).count() == 3


def test_a_russian_client_gets_the_link_to_the_page_in_russian(tasks, django_capture_on_commit_callbacks):
    ivan = ClientFactory(email="ivan@example.com", language="ru")
    receipt = committed(django_capture_on_commit_callbacks, ivan, LedgerEntryKind.TOPUP, "1500.00").document

    tasks.run_all()

    (email,) = mail.outbox
    assert f"{SITE}/ru/account/invoices/{receipt.pk}/" in email.body
    assert f"1{NBSP}500,00{NBSP}RUB" in email.body  # Russian number format
    assert '<html lang="ru">' in email.alternatives[0][0]


def test_a_document_of_a_transaction_that_rolls_back_is_never_emailed(ann, tasks, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks, pytest.raises(RuntimeError), transaction.atomic():
        ledger_entry_add(client=ann, kind=LedgerEntryKind.TOPUP, amount=Decimal("5.00"))
        raise RuntimeError("the payment failed after its receipt was numbered")

    assert callbacks == []
    assert tasks.pending() == []
    assert not Document.objects.exists()


def test_with_the_setting_off_nothing_is_queued_or_sent_by_cron(ann, settings, tasks, django_capture_on_commit_callbacks):
    settings.BILLING_EMAIL_DOCUMENTS = False
    document = committed(django_capture_on_commit_callbacks, ann, LedgerEntryKind.TOPUP, "5.00").document

    assert tasks.pending() == []
    assert documents_email_pending() == 0
    assert mail.outbox == []
    document.refresh_from_db()
    assert document.emailed_at is None


def test_a_document_is_emailed_once_however_often_the_task_and_cron_run(ann, tasks, django_capture_on_commit_callbacks):
    document = committed(django_capture_on_commit_callbacks, ann, LedgerEntryKind.TOPUP, "5.00").document

    tasks.run_all()
    assert document_email_send(document_id=document.pk) is False  # the task delivered twice
    assert documents_email_pending() == 0

    assert sent() == [(["ann@example.com"], "Receipt RCP-2026-00001")]


def test_a_mail_server_that_is_down_keeps_the_billing_and_cron_sends_the_document_later(
    ann, settings, tasks, caplog, django_capture_on_commit_callbacks
):
    committed(django_capture_on_commit_callbacks, ann, LedgerEntryKind.TOPUP, "25.00")
    settings.EMAIL_BACKEND = f"{__name__}.MailServerDown"
    charge = committed(django_capture_on_commit_callbacks, ann, LedgerEntryKind.CHARGE, "10.00")

    tasks.run_all()  # does not raise

    assert Document.objects.filter(emailed_at__isnull=True).count() == 2  # the claims were given back
    assert "could not email document INV-2026-00001" in caplog.text
    assert LedgerEntry.objects.get(kind=LedgerEntryKind.CHARGE).amount == Decimal("-10.00")
    assert client_balance(client=ann) == Decimal("15.00")
    assert mail.outbox == []

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    with time_machine.travel(datetime(2026, 5, 16, 12, 15, tzinfo=UTC), tick=False):
        assert documents_email_pending() == 2
        assert documents_email_pending() == 0

    assert sent() == [(["ann@example.com"], "Receipt RCP-2026-00001"), (["ann@example.com"], "Invoice INV-2026-00001")]
    charge.document.refresh_from_db()
    assert charge.document.emailed_at == datetime(2026, 5, 16, 12, 15, tzinfo=UTC)


def test_cron_leaves_documents_unsent_for_more_than_three_days_to_staff(ann, settings, django_capture_on_commit_callbacks):
    settings.EMAIL_BACKEND = f"{__name__}.MailServerDown"
    with time_machine.travel(datetime(2026, 5, 12, 11, tzinfo=UTC), tick=False):
        old = committed(django_capture_on_commit_callbacks, ann, LedgerEntryKind.TOPUP, "1.00").document
    with time_machine.travel(datetime(2026, 5, 13, 13, tzinfo=UTC), tick=False):
        recent = committed(django_capture_on_commit_callbacks, ann, LedgerEntryKind.TOPUP, "2.00").document
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

    assert documents_email_pending() == 1  # at 2026-05-16 12:00: three days back is 2026-05-13 12:00

    assert sent() == [(["ann@example.com"], f"Receipt {recent.number}")]
    assert list(Document.objects.filter(emailed_at__isnull=True)) == [old]


@postgres_only()
@pytest.mark.django_db(transaction=True)
def test_two_workers_sending_the_same_document_send_one_email(ann):
    document = ledger_entry_add(client=ann, kind=LedgerEntryKind.TOPUP, amount=Decimal("5.00")).document

    outcomes = run_at_once(4, lambda i: document_email_send(document_id=document.pk))

    assert outcomes == [None] * 4
    assert len(mail.outbox) == 1
