"""The API's core: who a request is (token or browser session), throttling, and the one JSON error shape everywhere."""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.core.exceptions import ValidationError as DjangoValidationError
from django.test import Client as BrowserClient
from django.test import RequestFactory
from django.utils import timezone
from rest_framework import serializers
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from billing.api import catalog
from billing.api.errors import server_error
from billing.api.models import ApiToken
from billing.api.tokens import token_create, token_revoke
from billing.services import client_register

PASSWORD = "correct-horse-battery"
INVALID_TOKEN = {"code": "authentication_failed", "message": "The token is invalid, expired or revoked.", "fields": {}}
NO_CREDENTIALS = {"code": "not_authenticated", "message": "Authentication credentials were not provided.", "fields": {}}
NOT_FOUND = {"code": "not_found", "message": "Not found.", "fields": {}}


@pytest.fixture
def customer(db):
    return client_register(email="ann@example.com", name="Ann", password=PASSWORD, language="en")


@pytest.fixture
def user(customer):
    return customer.users.get()


@pytest.fixture
def token(user):
    return token_create(user=user, name="Shop site", scopes=["read", "write"])


def bearer(plaintext: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {plaintext}"}


# Authentication


def test_a_valid_token_is_its_user_with_its_name_and_scopes(client, customer, token):
    response = client.get("/api/v1/me", **bearer(token[1]))

    assert response.status_code == 200
    assert response.json() == {
        "user": "ann@example.com",
        "is_staff": False,
        "client_id": customer.pk,
        "token": "Shop site",
        "scopes": ["read", "write"],
    }


def _revoked(token, user):
    token_revoke(token=token)


def _expired(token, user):
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))


def _inactive(token, user):
    user.is_active = False
    user.save(update_fields=["is_active"])


@pytest.mark.parametrize("spoil", [_revoked, _expired, _inactive], ids=["revoked", "expired", "inactive user"])
def test_a_revoked_or_expired_token_or_one_of_an_inactive_user_is_401(client, token, user, spoil):
    spoil(token[0], user)

    response = client.get("/api/v1/me", **bearer(token[1]))

    assert response.status_code == 401
    assert response.json() == INVALID_TOKEN
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


@pytest.mark.parametrize(
    "header",
    [
        "Bearer {prefix}.wrong-secret",
        "Bearer {prefix}.{secret}x",
        "Bearer {prefix}",
        "Bearer .{secret}",
        "Bearer nosuchprefix.{secret}",
        "Bearer " + "p" * 17 + ".{secret}",
        "bearer {prefix}.{secret} extra",
        "Bearer",
    ],
)
def test_a_wrong_or_malformed_bearer_token_is_401_in_the_error_shape(client, token, header):
    prefix, secret = token[1].split(".")

    response = client.get("/api/v1/me", HTTP_AUTHORIZATION=header.format(prefix=prefix, secret=secret))

    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "authentication_failed"
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_a_token_with_bytes_that_are_not_ascii_is_401(client, token):
    # A server hands WSGI the header's bytes as Latin-1 characters.
    response = client.get("/api/v1/me", HTTP_AUTHORIZATION="Bearer ключ.секрет".encode().decode("latin-1"))

    assert response.status_code == 401
    assert response.json() == INVALID_TOKEN


@pytest.mark.parametrize("headers", [{}, {"HTTP_AUTHORIZATION": "Basic YW5uOnB3"}, {"HTTP_AUTHORIZATION": ""}])
def test_without_credentials_is_401_with_the_bearer_challenge(client, db, headers):
    response = client.get("/api/v1/me", **headers)

    assert response.status_code == 401
    assert response.json() == NO_CREDENTIALS
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_a_token_is_not_asked_for_csrf(token):
    browser = BrowserClient(enforce_csrf_checks=True)

    response = browser.post("/api/v1/me", {}, content_type="application/json", **bearer(token[1]))

    assert response.status_code == 405  # past authentication: /me only reads
    assert response.json()["code"] == "method_not_allowed"


# A browser session


def test_a_browser_session_reads_with_read_and_write_scopes_and_no_token(customer, user):
    browser = BrowserClient(enforce_csrf_checks=True)
    browser.force_login(user)

    response = browser.get("/api/v1/me")

    assert response.status_code == 200
    expected = {"user": "ann@example.com", "is_staff": False, "client_id": customer.pk, "token": None, "scopes": ["read", "write"]}
    assert response.json() == expected


def test_a_browser_session_needs_the_csrf_token_on_unsafe_methods(user):
    browser = BrowserClient(enforce_csrf_checks=True)
    browser.force_login(user)
    browser.get("/api/v1/me")  # any page sets the CSRF cookie; here it is set by hand below

    refused = browser.post("/api/v1/me", {}, content_type="application/json")
    assert refused.status_code == 403
    assert refused.json()["code"] == "permission_denied"
    assert refused.json()["message"].startswith("CSRF Failed")

    browser.cookies["csrftoken"] = csrf = "a" * 32
    allowed = browser.post("/api/v1/me", {}, content_type="application/json", HTTP_X_CSRFTOKEN=csrf)
    assert allowed.status_code == 405  # past the CSRF check


# Throttling


@pytest.fixture
def two_a_minute(settings):
    settings.API_THROTTLE_RATE = "2/min"
    cache.clear()
    yield
    cache.clear()


def test_a_token_past_its_rate_gets_429_with_retry_after_and_another_token_does_not(client, user, token, two_a_minute):
    assert [client.get("/api/v1/me", **bearer(token[1])).status_code for _ in range(2)] == [200, 200]

    throttled = client.get("/api/v1/me", **bearer(token[1]))

    assert throttled.status_code == 429
    assert throttled.json()["code"] == "throttled"
    assert 1 <= int(throttled["Retry-After"]) <= 60
    other = token_create(user=user, name="Support desk", scopes=["read"])[1]
    assert client.get("/api/v1/me", **bearer(other)).status_code == 200


def test_requests_without_credentials_have_their_own_rate_per_address(client, db, settings):
    settings.API_THROTTLE_ANON_RATE = "1/min"
    cache.clear()

    assert client.get("/api/v1/tariffs").status_code == 200
    throttled = client.get("/api/v1/tariffs")

    assert throttled.status_code == 429
    assert int(throttled["Retry-After"]) >= 1
    cache.clear()


# Errors are JSON, never a page


@pytest.mark.parametrize("path", ["/api/v1/nothing-here", "/api/v1/tariffs/0.5", "/api/v1/tariffs/1/nothing", "/api/v2/me", "/api/"])
@pytest.mark.parametrize("method", ["get", "post", "delete", "options"])
def test_an_address_under_api_that_names_nothing_is_a_json_404(client, db, path, method):
    response = getattr(client, method)(path, HTTP_AUTHORIZATION="Bearer not.valid")

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == NOT_FOUND


def test_an_unknown_object_is_a_json_404(client, token):
    response = client.get("/api/v1/tariffs/999999", **bearer(token[1]))

    assert response.status_code == 404
    assert response.json() == NOT_FOUND


def test_an_unexpected_exception_in_an_api_view_is_a_json_500_without_a_traceback(token, monkeypatch):
    def broken(view, request):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(catalog.MeView, "get", broken)
    browser = BrowserClient(raise_request_exception=False)

    response = browser.get("/api/v1/me", **bearer(token[1]))

    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["code"] == "server_error" and body["fields"] == {}
    assert "secret internals" not in response.content.decode() and "Traceback" not in response.content.decode()


def test_the_pages_keep_their_own_500_page(db):
    response = server_error(RequestFactory().get("/account/"))

    assert response.status_code == 500
    assert response["Content-Type"].startswith("text/html")


class _Raises(APIView):
    """Raises what a service or serializer would, to see the handler's answer."""

    authentication_classes = []
    permission_classes = []
    error = None

    def get(self, request):
        raise self.error


class _AddressSerializer(serializers.Serializer):
    city = serializers.CharField()
    lines = serializers.ListField(child=serializers.CharField(max_length=3))


def _answer(error):
    return _Raises.as_view(error=error)(APIRequestFactory().get("/api/v1/x")).data


def test_a_services_validation_error_on_fields_is_400_with_its_code_message_and_fields(db):
    error = DjangoValidationError(
        {"__all__": [DjangoValidationError("The balance is too low.", code="insufficient_funds")], "domain": ["Enter a domain."]}
    )

    assert _answer(error) == {
        "code": "insufficient_funds",
        "message": "The balance is too low.",
        "fields": {"domain": ["Enter a domain."]},
    }


def test_a_services_plain_validation_error_is_its_message_and_code(db):
    error = DjangoValidationError("Service #7 is already paid for: nothing was charged.", code="already_paid")

    assert _answer(error) == {"code": "already_paid", "message": "Service #7 is already paid for: nothing was charged.", "fields": {}}


def test_nested_field_errors_are_flattened_with_dots(db):
    serializer = _AddressSerializer(data={"lines": ["ok", "toolong"]})
    serializer.is_valid()

    body = _answer(serializers.ValidationError(serializer.errors))

    assert body == {
        "code": "required",
        "message": "Some fields are not valid.",
        "fields": {"city": ["This field is required."], "lines.1": ["Ensure this field has no more than 3 characters."]},
    }


# Language


def test_messages_follow_accept_language(client, db):
    response = client.get("/api/v1/me", HTTP_ACCEPT_LANGUAGE="ru")

    assert response.status_code == 401
    assert response.json()["message"] == "Учетные данные не были предоставлены."
    assert client.get("/api/v1/nothing", HTTP_ACCEPT_LANGUAGE="ru").json()["message"] == "Страница не найдена."
