"""Emails to clients about their services: recorded in the transaction that decided them, sent after it commits.

A notice is made once: its key names what it is about (kind, service, date or period), so a repeated
run or a retried request finds the first one. The worker sends it; a mail server that is down leaves
the error on the row and never rolls back the billing that decided it.
"""

import logging
from datetime import date, timedelta
from functools import partial

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.translation import gettext_lazy as _

from billing.choices import NotificationKind
from billing.models import Notification, Service

logger = logging.getLogger(__name__)


def notify(*, service: Service, kind: str, key: str, day: date, params: dict | None = None) -> Notification | None:
    """Record the notice `key` unless it exists, and send it once the transaction commits; None when it existed."""
    try:
        with transaction.atomic():  # the unique key refuses a second one; callers rarely repeat, so no look first
            notification = Notification.objects.create(
                client_id=service.client_id, service=service, kind=kind, key=key, day=day, params=params or {}
            )
    except IntegrityError:
        return None  # made before, or at the same moment by another process
    transaction.on_commit(partial(_enqueue_send, notification.pk))
    return notification


def _enqueue_send(notification_id: int) -> None:
    from billing.tasks import send_notification

    send_notification.enqueue(notification_id)


# Subjects name the service by its number (what the client area lists) and the date that matters, if any.
_SUBJECTS = {
    NotificationKind.RENEWED: _("Service #%(id)d is renewed until %(until)s"),
    NotificationKind.LOW_BALANCE: _("Top up your balance: service #%(id)d expires on %(expires)s"),
    NotificationKind.EXPIRES: _("Service #%(id)d expires on %(expires)s and will not be renewed"),
    NotificationKind.SUSPENDED: _("Service #%(id)d is suspended for non-payment"),
    NotificationKind.RESUMED: _("Service #%(id)d is active again"),
    NotificationKind.DELETED: _("Service #%(id)d is deleted"),
}
# Params that hold ISO dates: the templates write them in the client's date format.
_DATE_PARAMS = ("until", "expires", "delete_on")


def notification_message(notification: Notification) -> EmailMultiAlternatives:
    """The notice as an email to its client, in the client's language: a subject, a plain text and an HTML body."""
    client, service = notification.client, notification.service
    params = dict(notification.params)
    for name in _DATE_PARAMS:
        if params.get(name):
            params[name] = date.fromisoformat(params[name])
    with translation.override(client.language):
        dates = {name: date_format(params[name]) for name in _DATE_PARAMS if params.get(name)}
        subject = _SUBJECTS[notification.kind] % ({"id": service.pk} | dates)
        context = params | {
            "subject": subject,
            "client": client,
            "service": service,
            "currency": client.currency,
            # Built in the client's language, so the links open the pages in it (/ru/...).
            "client_area_url": settings.SITE_URL + reverse("client_area"),
            "balance_url": settings.SITE_URL + reverse("balance"),
            "service_url": settings.SITE_URL + reverse("service_detail", args=[service.pk]),
        }
        text = render_to_string(f"emails/{notification.kind}.txt", context)
        html = render_to_string(f"emails/{notification.kind}.html", context)
    message = EmailMultiAlternatives(subject, text, None, [client.email])
    message.attach_alternative(html, "text/html")
    return message


def notification_send(*, notification_id: int) -> bool:
    """Send the notice unless it was sent; True when this call sent it.

    The row is claimed by a conditional update (sent_at from empty to now) rather than locked while the
    mail server answers: a lock held that long would stop every writer on SQLite. Two workers never
    both send it; a worker that dies between the claim and the mail server's answer leaves it marked
    sent (a notice may be lost then, never doubled). A mail server that is down puts the claim back and
    leaves its error on the row for notifications_send_pending; nothing else changes.
    """
    notification = Notification.objects.select_related("client", "service__tariff").filter(pk=notification_id).first()
    if notification is None or notification.sent_at is not None:
        return False  # sent already (the task ran twice), or gone with its service
    message = notification_message(notification)
    unsent = Notification.objects.filter(pk=notification.pk, sent_at__isnull=True)
    if not unsent.update(sent_at=timezone.now(), error=""):
        return False  # another worker has just claimed it
    try:
        message.send()
    except OSError as error:  # smtplib.SMTPException is an OSError
        Notification.objects.filter(pk=notification.pk).update(sent_at=None, error=f"{type(error).__name__}: {error}")
        logger.exception("could not send notification %s to client %s", notification.pk, notification.client_id)
        return False
    return True


# Cron retries unsent notices this long; older ones (an address that never accepts mail) stay for staff.
RETRY_FOR = timedelta(days=3)


def notifications_send_pending() -> int:
    """Send every notice not sent yet (the mail server was down, or a worker died), oldest first; how many were sent.

    Cron runs it every 15 minutes; it looks back RETRY_FOR, so a notice that can never be delivered is not retried forever.
    """
    recent = Notification.objects.filter(sent_at__isnull=True, created_at__gte=timezone.now() - RETRY_FOR)
    pending = recent.order_by("pk").values_list("pk", flat=True)
    return sum(notification_send(notification_id=pk) for pk in pending)
