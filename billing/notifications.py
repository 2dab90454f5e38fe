"""Emails to clients about their services: recorded in the transaction that decided them, sent after it commits.

A notice is made once: its key names what it is about (kind, service, date or period), so a repeated
run or a retried request finds the first one. The worker sends it; a mail server that is down leaves
the error on the row and never rolls back the billing that decided it.
"""

from datetime import date
from functools import partial

from django.db import IntegrityError, transaction

from billing.models import Notification, Service


def notify(*, service: Service, kind: str, key: str, day: date, params: dict | None = None) -> Notification | None:
    """Record the notice `key` unless it exists, and send it once the transaction commits; None when it existed."""
    try:
        with transaction.atomic():
            if Notification.objects.filter(key=key).exists():
                return None
            notification = Notification.objects.create(
                client_id=service.client_id, service=service, kind=kind, key=key, day=day, params=params or {}
            )
    except IntegrityError:
        return None  # made at the same moment by another process
    transaction.on_commit(partial(_enqueue_send, notification.pk))
    return notification


def _enqueue_send(notification_id: int) -> None:
    from billing.tasks import send_notification

    send_notification.enqueue(notification_id)
