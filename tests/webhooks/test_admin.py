"""The webhook pages of the admin: the secret shown once and stored encrypted, rotation, private URLs refused, Redeliver."""

import re

from django.contrib.messages import get_messages
from django.db import connection
from django.urls import reverse
from standardwebhooks import Webhook

from billing.services import service_renew
from billing.webhooks.models import DeliveryStatus, EventType, WebhookDelivery, WebhookEndpoint
from tests.webhooks.conftest import active_service, subscribe

SECRET = re.compile(r"whsec_[A-Za-z0-9+/=]{44}")


def messages_of(response):
    return [str(message) for message in get_messages(response.wsgi_request)]


def add(admin_client, url, types=("service.renewed",)):
    return admin_client.post(
        reverse("admin:billing_webhookendpoint_add"), {"url": url, "event_types": list(types), "enabled": "on", "description": "CRM"}
    )


def test_a_new_endpoints_secret_is_shown_once_and_stored_encrypted(admin_client):
    response = add(admin_client, "https://hooks.example.com/billing")

    assert response.status_code == 302
    endpoint = WebhookEndpoint.objects.get()
    (shown,) = [SECRET.search(text).group() for text in messages_of(response) if SECRET.search(text)]
    assert str(endpoint.secret) == shown
    Webhook(shown)  # the package reads it
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM billing_webhookendpoint WHERE id = %s", [endpoint.pk])
        stored = cursor.fetchone()[0]
    assert shown not in stored and stored.startswith("gAAAAA")
    assert endpoint.event_types == ["service.renewed"]
    change_page = reverse("admin:billing_webhookendpoint_change", args=[endpoint.pk])
    assert shown in admin_client.get(response.url).content.decode()  # the page after saving shows it
    for url in (change_page, response.url):  # and nothing ever again
        assert not SECRET.search(admin_client.get(url).content.decode())


def test_rotating_the_secret_shows_the_new_one_once(admin_client):
    endpoint = subscribe("https://hooks.example.com/billing", EventType.SERVICE_RENEWED)
    old = str(endpoint.secret)

    response = admin_client.post(
        reverse("admin:billing_webhookendpoint_changelist"), {"action": "rotate_secret", "_selected_action": [endpoint.pk]}
    )

    endpoint.refresh_from_db()
    assert str(endpoint.secret) != old
    assert any(str(endpoint.secret) in text for text in messages_of(response))


def test_a_private_address_is_refused_on_the_form_and_nothing_is_saved(admin_client, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False

    response = add(admin_client, "http://127.0.0.1:8080/hooks")

    assert response.status_code == 200
    assert "webhooks go to public addresses only" in response.content.decode()
    assert not WebhookEndpoint.objects.exists()


def test_an_endpoint_needs_known_event_types(admin_client):
    response = add(admin_client, "https://hooks.example.com/billing", types=("service.exploded",))

    assert response.status_code == 200
    assert not WebhookEndpoint.objects.exists()


def test_redeliver_queues_one_more_attempt_even_for_a_given_up_delivery(admin_client, receiver, tasks, transactional_db):
    subscribe(receiver.url, EventType.SERVICE_RENEWED)
    service_renew(service=active_service())
    WebhookDelivery.objects.update(status=DeliveryStatus.FAILED, attempts=11, next_attempt_at=None)
    tasks.backend.clear()
    delivery = WebhookDelivery.objects.get()

    response = admin_client.post(
        reverse("admin:billing_webhookdelivery_changelist"), {"action": "redeliver", "_selected_action": [delivery.pk]}
    )
    tasks.run_all()

    assert "1 delivery queued again." in messages_of(response)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.SUCCEEDED, 12)
    assert len(receiver.requests) == 1


def test_the_delivery_and_event_pages_show_the_attempts_and_offer_no_editing(admin_client, receiver, tasks, transactional_db):
    subscribe(receiver.url, EventType.SERVICE_RENEWED)
    receiver.answers = [500]
    service_renew(service=active_service())
    tasks.run_all()
    delivery = WebhookDelivery.objects.get()

    page = admin_client.get(reverse("admin:billing_webhookdelivery_change", args=[delivery.pk])).content.decode()
    event_page = admin_client.get(reverse("admin:billing_webhookevent_change", args=[delivery.event_id])).content.decode()

    assert "The endpoint did not answer with a 2xx status." in page
    assert 'name="_save"' not in page and 'name="_save"' not in event_page
    assert delivery.event.event_id in event_page
    assert admin_client.get(reverse("admin:billing_webhookdelivery_changelist")).status_code == 200
