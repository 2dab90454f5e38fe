"""Delivering events: Standard Webhooks signatures, retries with backoff, the lease, redirects, recovery."""

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone
from standardwebhooks import Webhook, WebhookVerificationError

from billing.services import service_renew
from billing.webhooks.delivery import delivery_attempt
from billing.webhooks.models import DeliveryStatus, EventType, WebhookAttempt, WebhookDelivery, WebhookEvent
from tests.webhooks.conftest import active_service, subscribe

pytestmark = pytest.mark.usefixtures("clock")


def run_until_sent(tasks, receiver, count):
    """Run queued tasks one by one (the renewal's notice among them) until the receiver has had `count` requests."""
    while len(receiver.requests) < count:
        tasks.run_next()


def verified(endpoint, request):
    """The request's body as its receiver reads it, after checking the signature with the endpoint's secret."""
    _path, headers, body = request
    return Webhook(str(endpoint.secret)).verify(body, headers)


def test_a_renewal_is_delivered_three_times_to_an_endpoint_answering_500_500_200_then_never_again(receiver, clock, tasks, transactional_db):
    endpoint = subscribe(receiver.url, EventType.SERVICE_RENEWED)
    service = active_service()
    receiver.answers = [500, 500]

    service_renew(service=service)
    run_until_sent(tasks, receiver, 1)
    clock.shift(timedelta(seconds=5))  # the first wait of the schedule; each attempt queued the next one
    run_until_sent(tasks, receiver, 2)
    first_two = [verified(endpoint, request) for request in receiver.requests]  # checked at once: a timestamp ages
    clock.shift(timedelta(minutes=1))
    run_until_sent(tasks, receiver, 3)
    third = verified(endpoint, receiver.requests[2])
    clock.shift(timedelta(days=4))
    tasks.run_all()

    event = WebhookEvent.objects.get(type="service.renewed")  # one; its invoice is an invoice.issued event beside it
    assert len(receiver.requests) == 3
    assert {headers["webhook-id"] for _path, headers, _body in receiver.requests} == {event.event_id}
    assert len({body for _path, _headers, body in receiver.requests}) == 1
    assert len({headers["webhook-timestamp"] for _path, headers, _body in receiver.requests}) == 3  # signed afresh each time
    assert first_two == [third, third]
    assert third["type"] == "service.renewed"
    assert third["data"]["id"] == service.pk
    assert third["data"]["expires_at"] == "2026-03-31T10:00:00Z"
    assert third["data"]["renewal"] == {"periods": 1, "amount": "10.00"}
    assert third["timestamp"].startswith("2026-02-20T09:00:") and third["timestamp"].endswith("Z")  # the event's time, in UTC
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == (DeliveryStatus.SUCCEEDED, 3, None)
    assert list(delivery.attempt_log.values_list("response_status", "succeeded")) == [(500, False), (500, False), (200, True)]
    assert not tasks.pending()


def test_a_signature_made_with_another_secret_does_not_verify(receiver, tasks, transactional_db):
    subscribe(receiver.url, EventType.SERVICE_RENEWED)
    service_renew(service=active_service())
    tasks.run_all()

    _path, headers, body = receiver.requests[0]
    other = subscribe("https://example.com/", EventType.SERVICE_RENEWED)
    with pytest.raises(WebhookVerificationError):
        Webhook(str(other.secret)).verify(body, headers)


def test_the_body_is_type_timestamp_and_data(receiver, tasks, transactional_db):
    subscribe(receiver.url, EventType.SERVICE_RENEWED)
    service_renew(service=active_service())
    tasks.run_all()

    _path, headers, body = receiver.requests[0]
    assert headers["content-type"] == "application/json"
    assert list(json.loads(body)) == ["type", "timestamp", "data"]


def test_the_waits_follow_the_schedule_and_the_delivery_is_given_up_after_the_last(receiver, clock, tasks, transactional_db, settings):
    assert settings.WEBHOOK_RETRY_SECONDS == [5, 60, 300, 1800, 7200, 18000, 36000, 50400, 72000, 72000]
    assert timedelta(days=2, hours=23) < timedelta(seconds=sum(settings.WEBHOOK_RETRY_SECONDS)) < timedelta(days=3, hours=1)
    subscribe(receiver.url, EventType.SERVICE_RENEWED)
    receiver.answers = [503] * 20
    service_renew(service=active_service())
    delivery = WebhookDelivery.objects.get()
    waits = []

    for sent in range(1, 12):
        run_until_sent(tasks, receiver, sent)
        delivery.refresh_from_db()
        if delivery.next_attempt_at is None:
            break
        waits.append(round((delivery.next_attempt_at - timezone.now()).total_seconds()))
        clock.move_to(delivery.next_attempt_at)

    assert waits == [5, 60, 300, 1800, 7200, 18000, 36000, 50400, 72000, 72000]
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.FAILED, 11)
    assert len(receiver.requests) == 11
    clock.shift(timedelta(days=10))
    call_command("recover_operations", stdout=StringIO())
    tasks.run_all()
    assert len(receiver.requests) == 11  # given up means given up


def test_a_task_run_before_its_delivery_is_due_sends_nothing(receiver, tasks, transactional_db):
    subscribe(receiver.url, EventType.SERVICE_RENEWED)
    receiver.answers = [500]
    service_renew(service=active_service())
    tasks.run_all()  # the first attempt, then its retry's task at once (the test backend does not wait): 5 s too early

    assert len(receiver.requests) == 1
    assert WebhookDelivery.objects.get().attempts == 1


def test_redirects_are_not_followed_and_count_as_a_failure(receiver, tasks, transactional_db):
    subscribe(receiver.url, EventType.SERVICE_RENEWED)
    receiver.answers = [302]
    service_renew(service=active_service())
    tasks.run_all()

    assert [path for path, _headers, _body in receiver.requests] == ["/hooks"]
    attempt = WebhookAttempt.objects.get()
    assert (attempt.response_status, attempt.succeeded, attempt.error) == (302, False, "Redirects are not followed.")
    assert WebhookDelivery.objects.get().status == DeliveryStatus.PENDING


def test_a_connection_refused_is_recorded_and_retried(tasks, transactional_db):
    subscribe("http://127.0.0.1:9/hooks", EventType.SERVICE_RENEWED)  # the discard port: nothing listens
    service_renew(service=active_service())
    tasks.run_all()

    attempt = WebhookAttempt.objects.get()
    assert (attempt.response_status, attempt.succeeded) == (None, False)
    assert attempt.error.startswith("ConnectionError")
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.PENDING
    assert timedelta(seconds=4) < delivery.next_attempt_at - timezone.now() <= timedelta(seconds=5)


def test_a_private_address_is_refused_at_delivery_when_not_allowed(receiver, tasks, transactional_db, settings):
    subscribe(receiver.url, EventType.SERVICE_RENEWED)  # saved while allowed
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    service_renew(service=active_service())
    tasks.run_all()

    assert receiver.requests == []
    attempt = WebhookAttempt.objects.get()
    assert "127.0.0.1 is a loopback, private or reserved address" in attempt.error
    assert attempt.response_status is None


def test_a_delivery_held_by_one_worker_is_not_sent_by_another(receiver, tasks, transactional_db):
    subscribe(receiver.url, EventType.SERVICE_RENEWED)
    service_renew(service=active_service())
    delivery = WebhookDelivery.objects.get()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(locked_until=timezone.now() + timedelta(seconds=30))  # a worker is sending it

    assert delivery_attempt(delivery_id=delivery.pk) is None
    assert receiver.requests == []


def test_a_worker_that_outlived_its_lease_records_its_attempt_but_leaves_the_delivery_to_the_next(receiver, tasks, transactional_db):
    subscribe(receiver.url, EventType.SERVICE_RENEWED)
    service_renew(service=active_service())
    delivery = WebhookDelivery.objects.get()
    receiver.answers = [500]

    def taken_over():
        # While the first worker waits for its answer, its lease runs out and another worker delivers.
        WebhookDelivery.objects.filter(pk=delivery.pk).update(locked_until=timezone.now() - timedelta(seconds=1))
        assert delivery_attempt(delivery_id=delivery.pk).succeeded

    receiver.during_first = taken_over
    first = delivery_attempt(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert (first.response_status, first.succeeded) == (500, False)
    assert len(receiver.requests) == 2
    assert WebhookAttempt.objects.count() == 2
    # The second worker's 200 stands: the first one's late 500 did not put the delivery back to pending.
    assert (delivery.status, delivery.attempts, delivery.locked_until) == (DeliveryStatus.SUCCEEDED, 2, None)


def test_a_rolled_back_change_leaves_no_event_and_sends_nothing(receiver, tasks, transactional_db):
    subscribe(receiver.url, EventType.SERVICE_RENEWED)
    service = active_service()

    with pytest.raises(RuntimeError), transaction.atomic():
        service_renew(service=service)
        raise RuntimeError("the caller's transaction fails after the renewal")

    assert not WebhookEvent.objects.exists()
    assert not WebhookDelivery.objects.exists()
    tasks.run_all()
    assert receiver.requests == []


def test_recover_operations_queues_again_a_delivery_whose_task_was_lost(receiver, clock, tasks, transactional_db):
    subscribe(receiver.url, EventType.SERVICE_RENEWED)
    service_renew(service=active_service())
    tasks.backend.clear()  # lost with the worker that had it
    clock.shift(timedelta(minutes=6))
    out = StringIO()

    call_command("recover_operations", stdout=out)
    tasks.run_all()

    assert out.getvalue().splitlines()[1] == "Webhook deliveries queued again: 1 (their task was lost or their worker stopped)."
    assert len(receiver.requests) == 1
    assert WebhookDelivery.objects.get().status == DeliveryStatus.SUCCEEDED


def test_recover_operations_takes_over_a_delivery_whose_worker_died(receiver, clock, tasks, transactional_db):
    subscribe(receiver.url, EventType.SERVICE_RENEWED)
    service_renew(service=active_service())
    tasks.backend.clear()
    WebhookDelivery.objects.update(locked_until=timezone.now() + timedelta(seconds=45), attempts=1)  # claimed, then the worker died
    call_command("recover_operations", stdout=StringIO())
    assert not tasks.pending()  # its lease still runs

    clock.shift(timedelta(minutes=6))
    call_command("recover_operations", stdout=StringIO())
    tasks.run_all()

    assert len(receiver.requests) == 1
    assert WebhookDelivery.objects.get().status == DeliveryStatus.SUCCEEDED
