"""The outbox: an event is written in the transaction of the change it reports, with one delivery per subscribed endpoint.

So an event exists exactly when its change committed (a rolled-back change leaves none), and its
deliveries are queued only once it has.
"""

from functools import partial

from django.db import transaction
from django.utils import timezone

from billing.webhooks.models import EventType, WebhookDelivery, WebhookEndpoint, WebhookEvent


@transaction.atomic
def event_record(type: EventType | str, data: dict) -> WebhookEvent:
    """Record that `type` happened, with `data` (a payload from billing.webhooks.payloads); call it inside the change's transaction."""
    from billing.webhooks.delivery import delivery_enqueue  # delivery builds on the events

    event = WebhookEvent.objects.create(type=type, data=data)
    # Endpoints are few and SQLite cannot search a JSON list: the subscription is read here.
    subscribed = [pk for pk, types in WebhookEndpoint.objects.filter(enabled=True).values_list("pk", "event_types") if type in types]
    if subscribed:
        now = timezone.now()
        deliveries = WebhookDelivery.objects.bulk_create(
            WebhookDelivery(event=event, endpoint_id=endpoint_id, next_attempt_at=now) for endpoint_id in subscribed
        )
        for delivery in deliveries:
            transaction.on_commit(partial(delivery_enqueue, delivery.pk))
    return event
