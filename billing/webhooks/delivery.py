"""Sending events: Standard Webhooks signatures, a lease per attempt, retries with backoff, every attempt recorded.

A worker claims a due delivery with a compare-and-set UPDATE of its lease (`locked_until`), so two
workers never send the same delivery at once; the POST happens outside any transaction; the outcome
is written only while the lease is still the worker's. The task is only a nudge: a task run before
its delivery is due, or for one already sent, does nothing, and recover_operations queues again what
a lost task or a dead worker left due.
"""

import base64
import json
import logging
import secrets
import time
from datetime import UTC, datetime, timedelta

import requests
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop
from requests.adapters import HTTPAdapter
from standardwebhooks import Webhook

from billing.secret_fields import SecretUnreadable
from billing.task_queue import enqueue
from billing.webhooks.addresses import Destination, webhook_destination
from billing.webhooks.models import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent

logger = logging.getLogger(__name__)

SECRET_PREFIX = "whsec_"  # noqa: S105 - the form of a secret, not one
ERROR_MAX = 500
# Our own reasons are stored as these English texts and translated when shown; an exception's text is kept verbatim.
ENDPOINT_DISABLED = gettext_noop("The endpoint is disabled.")
REDIRECT_REFUSED = gettext_noop("Redirects are not followed.")
NOT_2XX = gettext_noop("The endpoint did not answer with a 2xx status.")


def secret_generate() -> str:
    """A new signing secret in the Standard Webhooks form: whsec_ and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def endpoint_secret_rotate(*, endpoint: WebhookEndpoint) -> str:
    """Give the endpoint a new secret and return it (shown once); deliveries sign with it from now on."""
    endpoint.secret = secret_generate()
    endpoint.save(update_fields=["secret"])
    return str(endpoint.secret)


def event_body(event: WebhookEvent) -> str:
    """The body every delivery of the event sends, byte for byte the same across retries."""
    timestamp = event.created_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return json.dumps({"type": event.type, "timestamp": timestamp, "data": event.data}, ensure_ascii=False, separators=(",", ":"))


def signed_headers(*, secret: str, event_id: str, body: str, at: datetime) -> dict:
    """The Standard Webhooks headers: the event's id, this attempt's time and the signature over both and the body."""
    return {
        "content-type": "application/json",
        "webhook-id": event_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(event_id, at, body),
    }


def delivery_enqueue(delivery_id: int, run_after=None) -> None:
    from billing.webhooks.tasks import deliver_webhook

    enqueue(deliver_webhook, delivery_id, run_after=run_after)


def _claim(delivery_id: int) -> datetime | None:
    """Take a due delivery for one attempt; the lease end it now holds, or None when it is not due or another worker has it."""
    now = timezone.now()
    lease = now + timedelta(seconds=settings.WEBHOOK_LEASE_SECONDS)
    claimed = (
        WebhookDelivery.objects.filter(pk=delivery_id, status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
        .filter(Q(locked_until__isnull=True) | Q(locked_until__lte=now))
        .update(locked_until=lease, attempts=F("attempts") + 1)
    )
    return lease if claimed else None


class _HostAdapter(HTTPAdapter):
    """Connects to the URL's address but speaks TLS with `host`: the name sent (SNI) and the one the certificate is checked against."""

    def __init__(self, host: str):
        self.host = host  # before super().__init__(), which makes the pool manager
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, server_hostname=self.host, **kwargs)  # urllib3 ignores it for http


def _post(destination: Destination, *, body: bytes, headers: dict) -> int:
    """POST to the checked address only: no second lookup, no proxy from the environment (it would connect for us), no redirect."""
    with requests.Session() as session:
        session.trust_env = False
        session.mount("http://", _HostAdapter(destination.host))
        session.mount("https://", _HostAdapter(destination.host))
        headers = {**headers, "host": destination.host_header}
        with session.post(
            destination.url, data=body, headers=headers, timeout=settings.WEBHOOK_TIMEOUT, allow_redirects=False, stream=True
        ) as response:  # the body is never read: a receiver cannot make us download much
            return response.status_code


def _send(delivery: WebhookDelivery) -> tuple[int | None, str]:
    """POST the event once: (the response's status or None, why it failed or "")."""
    endpoint = delivery.endpoint
    if not endpoint.enabled:
        return None, ENDPOINT_DISABLED
    try:
        destination = webhook_destination(endpoint.url)
    except ValidationError as refused:
        return None, " ".join(refused.messages)
    try:
        secret = str(endpoint.secret)
    except SecretUnreadable as error:
        return None, str(error)
    body = event_body(delivery.event)
    headers = signed_headers(secret=secret, event_id=delivery.event.event_id, body=body, at=datetime.now(UTC))
    try:
        status = _post(destination, body=body.encode(), headers=headers)
    except requests.RequestException as error:
        return None, f"{type(error).__name__}: {error}"
    if 200 <= status < 300:
        return status, ""
    return status, REDIRECT_REFUSED if 300 <= status < 400 else NOT_2XX


def delivery_attempt(*, delivery_id: int) -> WebhookAttempt | None:
    """Make one attempt at a due delivery; None when there was nothing to do (not due, sent, or another worker has it)."""
    lease = _claim(delivery_id)
    if lease is None:
        return None
    delivery = WebhookDelivery.objects.select_related("event", "endpoint").get(pk=delivery_id)
    started, clock = timezone.now(), time.monotonic()
    status, error = _send(delivery)
    duration_ms = round((time.monotonic() - clock) * 1000)
    succeeded = not error
    schedule = settings.WEBHOOK_RETRY_SECONDS
    now = timezone.now()
    if succeeded:
        change = {"status": DeliveryStatus.SUCCEEDED, "next_attempt_at": None}
    elif delivery.attempts > len(schedule) or error == ENDPOINT_DISABLED:
        change = {"status": DeliveryStatus.FAILED, "next_attempt_at": None}
    else:
        change = {"next_attempt_at": now + timedelta(seconds=schedule[delivery.attempts - 1])}
    with transaction.atomic():
        attempt = WebhookAttempt.objects.create(
            delivery=delivery, started_at=started, duration_ms=duration_ms, response_status=status, error=error[:ERROR_MAX],
            succeeded=succeeded,
        )  # fmt: skip
        # Written only while the lease is ours: a worker that outlived it leaves the delivery to the one that took over.
        if WebhookDelivery.objects.filter(pk=delivery_id, locked_until=lease).update(locked_until=None, **change):
            if change.get("next_attempt_at"):
                transaction.on_commit(lambda: delivery_enqueue(delivery_id, run_after=change["next_attempt_at"]))
        else:
            logger.warning("webhook delivery %s: the lease ran out during the attempt; its outcome is recorded, not applied", delivery_id)
    return attempt


def delivery_redeliver(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Queue one more attempt now, for a delivery sent, given up or still waiting; not while an attempt is under way."""
    now = timezone.now()
    with transaction.atomic():
        queued = (
            WebhookDelivery.objects.filter(pk=delivery.pk)
            .filter(Q(locked_until__isnull=True) | Q(locked_until__lte=now))
            .update(status=DeliveryStatus.PENDING, next_attempt_at=now)
        )
        if not queued:
            raise ValidationError(_("An attempt is being made right now: wait for it to finish."), code="busy")
        transaction.on_commit(lambda: delivery_enqueue(delivery.pk))
    delivery.refresh_from_db()
    return delivery


def deliveries_recover(*, late_after: timedelta) -> int:
    """Queue again the deliveries due for longer than `late_after` that no worker holds: their task was lost or their worker died."""
    now = timezone.now()
    due = WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lt=now - late_after).filter(
        Q(locked_until__isnull=True) | Q(locked_until__lte=now)
    )
    ids = list(due.values_list("pk", flat=True))
    for delivery_id in ids:
        delivery_enqueue(delivery_id)
    return len(ids)
