"""Emails about the billing cycle: one per notice, in the client's language, sent after the commit, never twice."""

import smtplib
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.db import transaction

from billing.choices import LedgerEntryKind, NotificationKind, ServiceStatus
from billing.models import LedgerEntry, Notification
from billing.notifications import notification_send, notifications_send_pending, notify
from billing.selectors import client_balance
from billing.services import ledger_entry_add
from billing.tasks import send_notification
from tests.conftest import postgres_only, run_at_once
from tests.factories import ServiceFactory, TariffPlanFactory

pytestmark = pytest.mark.django_db

SITE = "https://billing.example.com"


class MailServerDown(BaseEmailBackend):
    """A mail server that refuses every message with the error the test puts in `error`."""

    error = ConnectionRefusedError(111, "Connection refused")

    def send_messages(self, email_messages):
        raise self.error


@pytest.fixture(autouse=True)
def site(settings):
    settings.SITE_URL = SITE
    settings.TIME_ZONE = "UTC"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


@pytest.fixture
def service(customer):
    """Ann's Bakery (ann@example.com, RUB): "Site hosting" for ann.example.com, 10.00 a month, paid until 2026-02-28 10:00."""
    return ServiceFactory(
        client=customer, tariff=TariffPlanFactory(name="Site hosting"), domain="ann.example.com", price=Decimal("10.00"),
        status=ServiceStatus.ACTIVE, period_anchor=datetime(2026, 1, 31, 10, tzinfo=UTC), expires_at=datetime(2026, 2, 28, 10, tzinfo=UTC),
    )  # fmt: skip


def notify_committed(capture, service, kind, params, key=None):
    """notify() as the billing run calls it: inside a transaction, the email queued when it commits."""
    with capture(execute=True), transaction.atomic():
        return notify(service=service, kind=kind, key=key or f"{kind}-{service.pk}", day=date(2026, 3, 24), params=params)


# Each kind with the params the billing run writes: the subject, the plain text after the greeting, and the link.
KINDS = {
    NotificationKind.RENEWED: (
        {"until": "2026-03-31", "amount": "10.00", "periods": 1},
        "Service #{id} is renewed until March 31, 2026",
        "Your service was renewed from your balance: 10.00\xa0RUB for 1 period.\nIt is paid until March 31, 2026.",
        ("Your service", "/account/services/{id}/"),
    ),
    NotificationKind.LOW_BALANCE: (
        {"expires": "2026-03-31", "amount": "10.00", "balance": "4.00", "missing": "6.00"},
        "Top up your balance: service #{id} expires on March 31, 2026",
        "Your service expires on March 31, 2026. It renews automatically from your balance, but the balance (4.00\xa0RUB) "
        "does not cover the renewal (10.00\xa0RUB).\nTop up at least 6.00\xa0RUB to keep it running.",
        ("Top up your balance", "/account/balance/"),
    ),
    NotificationKind.EXPIRES: (
        {"expires": "2026-03-31"},
        "Service #{id} expires on March 31, 2026 and will not be renewed",
        "Your service expires on March 31, 2026. Auto-renew is off, so it will not be renewed.\n"
        "To keep it, renew it now or turn auto-renew on.",
        ("Your service", "/account/services/{id}/"),
    ),
    NotificationKind.SUSPENDED: (
        {"delete_on": "2026-04-17"},
        "Service #{id} is suspended for non-payment",
        "Your service is suspended: its period was not paid. Unless it is paid, it will be deleted with its data on April 17, 2026.\n"
        "Top up your balance: the service is renewed and resumed at once.",
        ("Top up your balance", "/account/balance/"),
    ),
    NotificationKind.RESUMED: (
        {"until": "2026-04-30"},
        "Service #{id} is active again",
        "Your service is active again. It is paid until April 30, 2026.",
        ("Your service", "/account/services/{id}/"),
    ),
    NotificationKind.DELETED: (
        {},
        "Service #{id} is deleted",
        "Your service is deleted, with its data: it stayed unpaid after it was suspended.",
        ("Your client area", "/account/"),
    ),
}


@pytest.mark.parametrize("kind", list(KINDS))
def test_each_kind_sends_one_email_to_the_client_about_its_service(kind, service, tasks, django_capture_on_commit_callbacks):
    params, subject, message, (link_text, path) = KINDS[kind]

    notification = notify_committed(django_capture_on_commit_callbacks, service, kind, params)
    assert [(result.task.name, result.args) for result in tasks.pending()] == [("send_notification", [notification.pk])]
    tasks.run_all()

    assert len(mail.outbox) == 1
    email = mail.outbox[0]
    url = SITE + path.format(id=service.pk)
    assert (email.to, email.subject) == (["ann@example.com"], subject.format(id=service.pk))
    assert email.body == (
        f"Hello, Ann's Bakery!\n\n{message}\n\nService: Site hosting, ann.example.com (#{service.pk})\n{link_text}: {url}\n\n"
    )
    html, mimetype = email.alternatives[0]
    assert mimetype == "text/html"
    assert '<html lang="en">' in html
    assert "<p>Hello, Ann&#x27;s Bakery!</p>" in html
    assert f'<a href="{url}">{link_text}</a>' in html
    notification.refresh_from_db()
    assert notification.sent_at is not None
    assert notification.error == ""


def test_a_renewal_for_several_periods_says_how_many(service, tasks, django_capture_on_commit_callbacks):
    params = {"until": "2026-05-31", "amount": "30.00", "periods": 3}
    notify_committed(django_capture_on_commit_callbacks, service, NotificationKind.RENEWED, params)
    tasks.run_all()

    assert "Your service was renewed from your balance: 30.00\xa0RUB for 3 periods.\nIt is paid until May 31, 2026." in mail.outbox[0].body


def test_suspended_and_resumed_without_their_dates_leave_the_date_out(service, tasks, django_capture_on_commit_callbacks):
    notify_committed(django_capture_on_commit_callbacks, service, NotificationKind.SUSPENDED, {})
    notify_committed(django_capture_on_commit_callbacks, service, NotificationKind.RESUMED, {})
    tasks.run_all()

    suspended, resumed = (email.body.split("\n\n")[1] for email in mail.outbox)
    assert suspended == (
        "Your service is suspended: its period was not paid.\nTop up your balance: the service is renewed and resumed at once."
    )
    assert resumed == "Your service is active again."


def test_the_email_is_in_the_clients_language(customer, service, tasks, django_capture_on_commit_callbacks):
    customer.language = "ru"
    customer.save()
    params = {"expires": "2026-03-31", "amount": "1010.00", "balance": "4.00", "missing": "1006.00"}

    notify_committed(django_capture_on_commit_callbacks, service, NotificationKind.LOW_BALANCE, params)
    tasks.run_all()

    # Month names, number grouping and the /ru/ pages come from Django's own Russian, not from our catalog.
    email = mail.outbox[0]
    html = email.alternatives[0][0]
    assert "31 марта 2026" in email.subject
    assert "31 марта 2026" in email.body
    assert "(4,00\xa0RUB)" in email.body
    assert "(1\xa0010,00\xa0RUB)" in email.body
    assert f"{SITE}/ru/account/balance/" in email.body
    assert '<html lang="ru">' in html
    assert f'<a href="{SITE}/ru/account/balance/">' in html


def test_a_task_run_twice_sends_one_email(service, tasks, django_capture_on_commit_callbacks):
    notification = notify_committed(django_capture_on_commit_callbacks, service, NotificationKind.RESUMED, {"until": "2026-04-30"})

    send_notification.call(notification.pk)
    send_notification.call(notification.pk)
    tasks.run_all()

    assert len(mail.outbox) == 1
    assert notifications_send_pending() == 0
    assert len(mail.outbox) == 1


def test_the_same_notice_made_twice_is_one_email(service, tasks, django_capture_on_commit_callbacks):
    first = notify_committed(django_capture_on_commit_callbacks, service, NotificationKind.EXPIRES, {"expires": "2026-03-31"})
    second = notify_committed(django_capture_on_commit_callbacks, service, NotificationKind.EXPIRES, {"expires": "2026-03-31"})
    tasks.run_all()

    assert first is not None
    assert second is None
    assert len(mail.outbox) == 1


@pytest.mark.parametrize(
    ("error", "recorded"),
    [
        (ConnectionRefusedError(111, "Connection refused"), "ConnectionRefusedError: [Errno 111] Connection refused"),
        (smtplib.SMTPServerDisconnected("Connection unexpectedly closed"), "SMTPServerDisconnected: Connection unexpectedly closed"),
    ],
)
def test_a_mail_server_that_is_down_keeps_the_error_and_the_billing(
    error, recorded, service, tasks, settings, monkeypatch, caplog, django_capture_on_commit_callbacks
):
    # The client's money and a charge decided together with the notice (what the billing run does), written
    # directly so that this test sees only its own notice, whatever else the services tell the client.
    LedgerEntry.objects.create(client=service.client, kind=LedgerEntryKind.TOPUP, amount=Decimal("25.00"))
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        ledger_entry_add(client=service.client, kind=LedgerEntryKind.CHARGE, amount=Decimal("10.00"), idempotency_key="renewal")
        notification = notify(
            service=service, kind=NotificationKind.RENEWED, key="renewed-until-2026-03-31", day=date(2026, 2, 25),
            params={"until": "2026-03-31", "amount": "10.00", "periods": 1},
        )  # fmt: skip
    settings.EMAIL_BACKEND = f"{__name__}.MailServerDown"
    monkeypatch.setattr(MailServerDown, "error", error)

    tasks.run_all()  # does not raise

    notification.refresh_from_db()
    assert (notification.sent_at, notification.error) == (None, recorded)
    assert f"could not send notification {notification.pk}" in caplog.text
    assert list(LedgerEntry.objects.filter(kind=LedgerEntryKind.CHARGE).values_list("amount", flat=True)) == [Decimal("-10.00")]
    assert client_balance(client=service.client) == Decimal("15.00")
    assert mail.outbox == []

    # The mail server is back: the pending notice goes out once, and its error is cleared.
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert notifications_send_pending() == 1
    assert notifications_send_pending() == 0
    notification.refresh_from_db()
    assert notification.sent_at is not None
    assert notification.error == ""
    assert [email.subject for email in mail.outbox] == [f"Service #{service.pk} is renewed until March 31, 2026"]


def test_a_notice_in_a_transaction_that_rolls_back_is_never_made_or_sent(service, tasks, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks, pytest.raises(RuntimeError), transaction.atomic():
        notify(service=service, kind=NotificationKind.RENEWED, key="renewed", day=date(2026, 2, 25), params={"until": "2026-03-31"})
        raise RuntimeError("the renewal failed after the notice was made")

    assert callbacks == []
    assert tasks.pending() == []
    assert not Notification.objects.exists()
    assert mail.outbox == []


@postgres_only()
@pytest.mark.django_db(transaction=True)
def test_two_workers_sending_the_same_notice_send_one_email(service):
    notification = Notification.objects.create(
        client=service.client, service=service, kind=NotificationKind.RESUMED, key="resumed", day=date(2026, 4, 5), params={}
    )

    outcomes = run_at_once(4, lambda i: notification_send(notification_id=notification.pk))

    assert outcomes == [None] * 4
    assert len(mail.outbox) == 1


def test_unsent_notices_older_than_three_days_are_left_for_staff(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    service = ServiceFactory()
    with time_machine.travel(datetime(2026, 3, 1, 9, tzinfo=UTC), tick=False):
        notify(service=service, kind=NotificationKind.DELETED, key="old", day=date(2026, 3, 1))
    with time_machine.travel(datetime(2026, 3, 3, 9, tzinfo=UTC), tick=False):
        notify(service=service, kind=NotificationKind.DELETED, key="recent", day=date(2026, 3, 3))

    with time_machine.travel(datetime(2026, 3, 4, 12, tzinfo=UTC), tick=False):
        assert notifications_send_pending() == 1

    assert list(Notification.objects.filter(sent_at__isnull=True).values_list("key", flat=True)) == ["old"]
