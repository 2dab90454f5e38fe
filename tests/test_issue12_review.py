"""Review of issue 12 (REST API, webhooks, API tokens): each test shows one finding and failed on the code it was written against."""

import threading
from decimal import Decimal
from http.server import ThreadingHTTPServer

import pytest
from django.contrib.auth.models import Permission
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from billing.api.tokens import token_create
from billing.choices import LedgerEntryKind, ServiceStatus
from billing.models import ApiToken, IdempotencyRecord, LedgerEntry, Service
from billing.payments import payment_start
from billing.services import ledger_entry_add
from billing.stored_text import StoredText
from billing.webhooks.addresses import webhook_url_check
from billing.webhooks.admin import WebhookEndpointForm
from billing.webhooks.delivery import delivery_attempt, secret_generate
from billing.webhooks.models import EventType, WebhookDelivery, WebhookEndpoint, WebhookEvent
from provisioning.choices import OperationStatus
from tests.factories import (
    ClientFactory,
    IPAssignmentFactory,
    OperationFactory,
    ServiceFactory,
    StaffUserFactory,
    TariffPlanFactory,
    UserFactory,
)
from tests.webhooks.conftest import Receiver

pytestmark = pytest.mark.django_db


def api_as(user, scopes=("read", "write")) -> APIClient:
    _token, plaintext = token_create(user=user, name="review", scopes=list(scopes))
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return api


def client_user():
    client, user = ClientFactory(), UserFactory()
    client.users.add(user)
    return client, user


def staff_with(*permissions):
    user = StaffUserFactory(is_superuser=False)
    for permission in permissions:
        app_label, _dot, codename = permission.partition(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return user


@pytest.fixture(autouse=True)
def no_throttling(settings):
    settings.API_THROTTLE_RATE = ""
    cache.clear()
    yield
    cache.clear()


# Hostile JSON: a 400 in the error shape, never a 500, and nothing done


def test_a_deeply_nested_json_body_is_a_400_and_frees_nothing_it_never_took():
    client, user = client_user()
    service = ServiceFactory(client=client, status=ServiceStatus.ACTIVE, price=Decimal("10.00"))
    ledger_entry_add(client=client, kind=LedgerEntryKind.TOPUP, amount=Decimal("50.00"))
    api = api_as(user)
    nested = "[" * 100_000 + "]" * 100_000

    renewed = api.post(f"/api/v1/services/{service.pk}/renew", nested, content_type="application/json", HTTP_IDEMPOTENCY_KEY="deep")
    previewed = api.post(f"/api/v1/services/{service.pk}/change/preview", nested, content_type="application/json")

    assert (renewed.status_code, renewed.json()["code"]) == (400, "parse_error")
    assert (previewed.status_code, previewed.json()["code"]) == (400, "parse_error")
    assert not LedgerEntry.objects.filter(kind=LedgerEntryKind.CHARGE).exists()
    assert not IdempotencyRecord.objects.exists()


@pytest.mark.parametrize("number", ["1e999", "-1e999"])
def test_a_json_number_too_big_for_a_float_is_a_400_not_a_500(number):
    client, user = client_user()
    tariff = TariffPlanFactory()
    staff = api_as(StaffUserFactory())

    ordered = api_as(user).post(
        "/api/v1/services", f'{{"tariff": {number}, "period": 1, "domain": "a.example.com"}}', content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="big",
    )  # fmt: skip
    topped_up = staff.post(
        "/api/v1/ledger", f'{{"client": {number}, "kind": "topup", "amount": "5.00"}}', content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="big",
    )  # fmt: skip

    assert (ordered.status_code, ordered.json()["code"]) == (400, "parse_error")
    assert (topped_up.status_code, topped_up.json()["code"]) == (400, "parse_error")
    assert not Service.objects.filter(tariff=tariff).exists()
    assert not LedgerEntry.objects.filter(client=client).exists()


# Access


def test_staff_without_the_admins_view_permission_do_not_read_services_operations_or_addresses():
    service = ServiceFactory()
    operation = OperationFactory(service=service)
    address = IPAssignmentFactory(service=service)
    nobody = api_as(staff_with())
    viewer = api_as(staff_with("billing.view_service", "provisioning.view_operation", "ipam_sync.view_ipassignment"))
    paths = [
        "/api/v1/services",
        f"/api/v1/services/{service.pk}",
        "/api/v1/operations",
        f"/api/v1/operations/{operation.pk}",
        "/api/v1/ip-assignments",
        f"/api/v1/ip-assignments/{address.pk}",
    ]

    assert [nobody.get(path).status_code for path in paths] == [403] * 6
    assert [viewer.get(path).status_code for path in paths] == [200] * 6


def test_a_clients_filters_do_not_tell_whether_another_clients_rows_exist():
    """?client=<id> answered 200 for an id that exists (another client's) and 400 for one that does not: an enumeration oracle."""
    _client, user = client_user()
    other = ClientFactory()
    topup = ledger_entry_add(client=other, kind=LedgerEntryKind.TOPUP, amount=Decimal("5.00"))
    ledger_entry_add(client=other, kind=LedgerEntryKind.CHARGE, amount=Decimal("5.00"))
    payment_start(client=other, gateway_code="manual", amount=Decimal("5.00"), by=None)
    theirs = ServiceFactory(client=other)
    api = api_as(user)
    missing = 999_999

    for path, value in [
        ("/api/v1/ledger?client", other.pk),
        ("/api/v1/payments?client", other.pk),
        ("/api/v1/documents?client", other.pk),
        ("/api/v1/documents?service", theirs.pk),
        ("/api/v1/documents?corrects", topup.document_id),
    ]:
        existing, absent = api.get(f"{path}={value}"), api.get(f"{path}={missing}")
        assert (path, existing.status_code, absent.status_code) == (path, 200, 200)
        assert existing.json()["results"] == absent.json()["results"] == []


def test_a_client_does_not_read_the_internal_error_text_of_its_operations():
    """The client area never shows an operation's error; the API showed clients the repr of unexpected exceptions (panel hosts)."""
    client, user = client_user()
    service = ServiceFactory(client=client, status=ServiceStatus.FAILED)
    internal = "ConnectionError(\"HTTPSConnectionPool(host='panel-7.internal', port=1500)\")"
    operation = OperationFactory(
        service=service, status=OperationStatus.FAILED, last_error=StoredText("unexpected error: %(error)s", {"error": internal})
    )

    shown = api_as(user).get(f"/api/v1/operations/{operation.pk}")

    assert shown.status_code == 200
    assert "panel-7.internal" not in shown.content.decode()


# Throttling


def test_requests_without_credentials_cannot_dodge_their_rate_with_x_forwarded_for(client, settings):
    settings.API_THROTTLE_ANON_RATE = "1/min"
    cache.clear()

    first = client.get("/api/v1/tariffs", HTTP_X_FORWARDED_FOR="203.0.113.1")
    second = client.get("/api/v1/tariffs", HTTP_X_FORWARDED_FOR="203.0.113.2")

    assert (first.status_code, second.status_code) == (200, 429)


def test_behind_trusted_proxies_the_anonymous_rate_is_per_forwarded_client(client, settings):
    settings.API_THROTTLE_ANON_RATE = "1/min"
    settings.TRUSTED_PROXY_COUNT = 1
    cache.clear()

    first = client.get("/api/v1/tariffs", HTTP_X_FORWARDED_FOR="203.0.113.1")
    other_client = client.get("/api/v1/tariffs", HTTP_X_FORWARDED_FOR="203.0.113.2")
    first_again = client.get("/api/v1/tariffs", HTTP_X_FORWARDED_FOR="198.51.100.9, 203.0.113.1")

    assert (first.status_code, other_client.status_code, first_again.status_code) == (200, 200, 429)


# API tokens in the admin


@pytest.fixture
def token_clerk(client):
    """A staff user who may only make and look at API tokens, signed in to the admin."""
    clerk = staff_with("billing.add_apitoken", "billing.view_apitoken")
    client.force_login(clerk)
    return clerk


def make_token(client, user):
    data = {"user": user.pk, "name": "Sync", "scopes": ["read", "write"], "expires_at_0": "", "expires_at_1": ""}
    return client.post(reverse("admin:billing_apitoken_add"), data)


def test_staff_who_may_make_tokens_cannot_make_one_for_a_superuser_or_other_staff(client, token_clerk):
    boss = StaffUserFactory(is_superuser=True)
    colleague = staff_with("billing.change_service", "billing.add_ledgerentry")

    for target in (boss, colleague):
        refused = make_token(client, target)
        assert refused.status_code == 200
        assert list(refused.context["adminform"].form.errors) == ["user"]
    assert not ApiToken.objects.exists()


def test_staff_who_may_make_tokens_still_make_them_for_clients_and_themselves(client, token_clerk):
    _customer, user = client_user()

    assert make_token(client, user).status_code == 302
    assert make_token(client, token_clerk).status_code == 302
    assert sorted(ApiToken.objects.values_list("user_id", flat=True)) == sorted([user.pk, token_clerk.pk])


# Webhook addresses


@pytest.fixture
def loopback_receiver():
    receiver = Receiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), receiver.handler())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield receiver, server.server_port
    server.shutdown()
    server.server_close()


def test_a_webhook_url_whose_host_the_http_client_reads_otherwise_is_refused_and_never_sent_to(loopback_receiver, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    settings.WEBHOOK_TIMEOUT = (0.5, 0.5)
    receiver, port = loopback_receiver
    url = f"http://127.0.0.1:{port}\\@8.8.8.8/hooks"
    endpoint = WebhookEndpoint.objects.create(url=url, secret=secret_generate(), event_types=[EventType.SERVICE_RENEWED])
    event = WebhookEvent.objects.create(type=EventType.SERVICE_RENEWED, data={"id": 1})
    delivery = WebhookDelivery.objects.create(event=event, endpoint=endpoint, next_attempt_at=timezone.now())

    form = WebhookEndpointForm(data={"url": url, "event_types": [EventType.SERVICE_RENEWED], "enabled": "on"})
    attempt = delivery_attempt(delivery_id=delivery.pk)

    assert receiver.requests == []
    assert not attempt.succeeded
    assert "url" in form.errors


@pytest.mark.parametrize("host", ["[64:ff9b::7f00:1]", "[64:ff9b::a9fe:a9fe]", "[2002:7f00:1::]", "[::127.0.0.1]"])
def test_ipv6_forms_carrying_a_private_ipv4_address_are_refused(settings, host):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False

    with pytest.raises(ValidationError):
        webhook_url_check(f"http://{host}/hooks")
