"""The issue's Idempotency-Key examples on POST /api/v1/services/{id}/renew: one charge however often it is sent."""

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from rest_framework.test import APIClient

from billing.api.models import IdempotencyRecord
from billing.choices import LedgerEntryKind
from billing.selectors import client_balance
from billing.services import ledger_entry_add
from tests.api.test_services_api import active_service, bearer, charges, client_user, utc
from tests.conftest import postgres_only, run_at_once

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def on_a_fixed_day(settings):
    settings.TIME_ZONE = "UTC"
    with time_machine.travel(utc(2026, 2, 10, 12), tick=False) as traveller:
        yield traveller


@pytest.fixture
def renewal():
    """Ann's service (10.00 a month, paid until 2026-02-28 10:00) with 25.00 on the balance, her token, and a renew call."""
    customer, user = client_user()
    service = active_service(customer)
    auth = bearer(user)

    def renew(key=None, body=None, auth=auth):
        headers = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
        return APIClient().post(f"/api/v1/services/{service.pk}/renew", body or {"periods": 1}, format="json", **headers, **auth)

    return service, renew


def test_the_same_key_and_body_replays_the_first_answer_and_charges_once(renewal):
    service, renew = renewal

    first = renew("k1")
    again = renew("k1")

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert first.json()["service"]["expires_at"] == "2026-03-31T10:00:00Z"
    assert again["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert charges(service.client) == [Decimal("-10.00")]
    assert client_balance(client=service.client) == Decimal("15.00")


def test_the_same_key_with_another_body_is_422_and_charges_nothing_more(renewal):
    service, renew = renewal
    renew("k1")

    reused = renew("k1", {"periods": 2})

    assert reused.status_code == 422
    assert reused.json()["code"] == "idempotency_key_reused"
    assert charges(service.client) == [Decimal("-10.00")]


def test_without_a_key_400_and_nothing_is_charged(renewal):
    service, renew = renewal

    answer = renew()

    assert answer.status_code == 400
    assert answer.json()["code"] == "idempotency_key_missing"
    assert charges(service.client) == []


@pytest.mark.parametrize("key", ["x" * 256, "ключ", "tab\tinside", ""])
def test_an_invalid_key_is_400_and_nothing_is_charged(renewal, key):
    service, renew = renewal

    answer = renew(key)

    assert answer.status_code == 400
    assert answer.json()["code"] == "idempotency_key_invalid"
    assert charges(service.client) == []
    assert not IdempotencyRecord.objects.exists()


def test_a_key_of_255_printable_characters_is_taken(renewal):
    _service, renew = renewal
    assert renew("~" * 255).status_code == 201


def test_an_error_answer_frees_the_key_for_the_corrected_request(renewal):
    service, renew = renewal
    renew("k0", {"periods": 2})  # 20.00 of the 25.00

    refused = renew("k3")  # 10.00 more: 5.00 missing
    ledger_entry_add(client=service.client, kind=LedgerEntryKind.TOPUP, amount=Decimal("5.00"))
    accepted = renew("k3")

    assert refused.status_code == 400
    assert refused.json()["code"] == "insufficient_funds"
    assert accepted.status_code == 201
    assert "Idempotent-Replayed" not in accepted
    assert sorted(charges(service.client)) == [Decimal("-20.00"), Decimal("-10.00")]


def test_keys_are_per_user(renewal):
    service, renew = renewal
    _customer, colleague = client_user(service.client)

    mine = renew("k1")
    theirs = renew("k1", auth=bearer(colleague))

    assert mine.status_code == theirs.status_code == 201
    assert "Idempotent-Replayed" not in theirs
    assert theirs.json()["service"]["expires_at"] == "2026-04-30T10:00:00Z"
    assert charges(service.client) == [Decimal("-10.00"), Decimal("-10.00")]


def test_a_key_past_its_time_to_live_may_be_used_again(renewal, on_a_fixed_day, settings):
    service, renew = renewal
    renew("k1")

    on_a_fixed_day.shift(timedelta(seconds=settings.API_IDEMPOTENCY_KEY_TTL - 1))
    kept = renew("k1")
    on_a_fixed_day.shift(timedelta(seconds=2))
    anew = renew("k1")

    assert kept["Idempotent-Replayed"] == "true"
    assert anew.status_code == 201
    assert "Idempotent-Replayed" not in anew
    assert charges(service.client) == [Decimal("-10.00"), Decimal("-10.00")]


def test_a_claim_left_unfinished_is_taken_over_once_stale(renewal, settings):
    service, renew = renewal
    user = service.client.users.get()
    # A request that claimed the key and died (its work rolled back): nothing stored.
    claimed_at = utc(2026, 2, 10, 12) - timedelta(seconds=settings.API_IDEMPOTENCY_STALE_AFTER + 1)
    IdempotencyRecord.objects.create(user=user, key="k9", request_hash="0" * 64, created_at=claimed_at)
    IdempotencyRecord.objects.create(user=user, key="k8", request_hash="0" * 64)

    taken_over = renew("k9")
    still_running = renew("k8")

    assert taken_over.status_code == 201
    # A fresh claim is still its request's: this other body is told the key is used.
    assert still_running.status_code == 422
    assert charges(service.client) == [Decimal("-10.00")]


@postgres_only()
@pytest.mark.django_db(transaction=True)
def test_two_requests_at_once_with_one_key_charge_once(renewal):
    service, renew = renewal
    answers = [None, None]

    def send(i):
        answers[i] = renew("k2")

    assert run_at_once(2, send) == [None, None]

    statuses = sorted(answer.status_code for answer in answers)
    assert statuses in ([201, 201], [201, 409])
    if statuses == [201, 409]:
        (busy,) = [answer for answer in answers if answer.status_code == 409]
        assert busy.json()["code"] == "request_in_progress"
    else:
        assert sorted(answer.get("Idempotent-Replayed", "") for answer in answers) == ["", "true"]
    assert charges(service.client) == [Decimal("-10.00")]
