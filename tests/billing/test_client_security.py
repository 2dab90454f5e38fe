"""What the public pages and the client area refuse: other clients' things, forged requests, tampered orders, guessing."""

import json
from decimal import Decimal

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client as Browser
from django.urls import reverse

from billing.choices import BillingPeriod, LedgerEntryKind, PaymentStatus, ResourceKind, ServiceStatus
from billing.models import Client, LedgerEntry, Payment, Service, ServiceResource, ServiceStatusChange
from billing.payments import callback_signature
from billing.services import ledger_entry_add
from provisioning.models import Operation
from tests.factories import ClientFactory, ServiceFactory, TariffPlanFactory, TariffPriceFactory, TariffResourceFactory, UserFactory

PASSWORD = "correct-horse-battery"  # what tests.factories.UserFactory sets
User = get_user_model()


def state():
    """Everything a request in the client area could create or change, in comparable form."""
    return {
        "users": list(User.objects.order_by("pk").values_list("pk", "username")),
        "clients": list(Client.objects.order_by("pk").values_list("pk", "name", "language")),
        "ledger": list(LedgerEntry.objects.order_by("pk").values_list("pk", "client", "amount")),
        "services": list(Service.objects.order_by("pk").values_list("pk", "client", "tariff", "status", "price", "paid_at")),
        "resources": list(ServiceResource.objects.order_by("pk").values_list("service", "kind", "quantity")),
        "status_changes": ServiceStatusChange.objects.count(),
        "payments": list(Payment.objects.order_by("pk").values_list("pk", "client", "status", "amount")),
        "operations": list(Operation.objects.order_by("pk").values_list("pk", "service", "action")),
    }


@pytest.fixture
def tariff(db):
    """300.00 a month plus a 50.00 setup fee; 10 databases included, up to 50 at 20.00 each."""
    tariff = TariffPlanFactory(name="Start", setup_fee=Decimal("50.00"))
    TariffResourceFactory(tariff=tariff, kind=ResourceKind.DATABASES, included=10, unit_price=Decimal("20.00"), max_quantity=50)
    return tariff


def top_up(customer, amount):
    ledger_entry_add(client=customer, kind=LedgerEntryKind.TOPUP, amount=Decimal(amount), reference="bank transfer")


def order_data(**fields):
    return {"period": "1", "domain": "bakery.example.com", "databases": "10", **fields}


# Another client's things


@pytest.fixture
def strangers(tariff):
    """Another client with money, an unpaid service, an active one and a pending payment: all within reach of a forged id."""
    other = ClientFactory(name="Bob's Garage")
    other.users.add(UserFactory(username="bob@example.com"))
    top_up(other, "1000.00")
    return {
        "ordered": ServiceFactory(client=other, tariff=tariff, price=Decimal("300.00")),
        "active": ServiceFactory(
            client=other, tariff=tariff, status=ServiceStatus.ACTIVE, panel_username="bob1", panel_password="bobs-panel-secret"
        ),
        "payment": Payment.objects.create(client=other, gateway="manual", amount=Decimal("500.00"), currency="RUB", reference="PBOB01"),
    }


@pytest.mark.parametrize(
    ("method", "url_name", "target", "data"),
    [
        ("get", "service_detail", "active", {}),
        ("get", "service_detail", "active", {"show": "1"}),
        ("post", "service_detail", "active", {"password": PASSWORD}),
        ("post", "service_pay", "ordered", {}),
        ("post", "service_action", "ordered", {"action": "close", "confirm": "yes"}),
        ("post", "service_action", "active", {"action": "suspend", "confirm": "yes"}),
        ("post", "service_action", "active", {"action": "close", "confirm": "yes"}),
        ("get", "service_action", "active", {"action": "close"}),
        ("get", "payment_detail", "payment", {}),
    ],
)
def test_another_clients_service_or_payment_is_a_404_and_nothing_changes(logged_in, customer, strangers, method, url_name, target, data):
    top_up(customer, "1000.00")
    before = state()

    response = getattr(logged_in, method)(reverse(url_name, args=[strangers[target].pk]), data)

    assert response.status_code == 404
    assert "bobs-panel-secret" not in response.content.decode()
    assert state() == before


def test_a_user_without_a_client_account_gets_a_404_in_the_client_area(client, db):
    client.force_login(UserFactory(username="staff-only@example.com"))

    assert client.get(reverse("client_area")).status_code == 404


# CSRF


@pytest.fixture
def guarded(user, customer, tariff):
    """A browser that checks CSRF like a real one: logged in, with the CSRF cookie, but sending no token."""
    browser = Browser(enforce_csrf_checks=True)
    browser.force_login(user)
    assert browser.get(reverse("shop")).status_code == 200  # sets the CSRF cookie
    return browser


def csrf_targets(customer, tariff):
    top_up(customer, "1000.00")
    service = ServiceFactory(client=customer, tariff=tariff, price=Decimal("300.00"))
    return {
        "order": (reverse("order", args=[tariff.pk]), order_data()),
        "pay": (reverse("service_pay", args=[service.pk]), {}),
        "action": (reverse("service_action", args=[service.pk]), {"action": "close", "confirm": "yes"}),
        "top-up": (reverse("balance"), {"amount": "100", "gateway": "manual"}),
        "show password": (reverse("service_detail", args=[service.pk]), {"password": PASSWORD}),
        "language": (reverse("set_language"), {"language": "ru", "next": "/"}),
    }


@pytest.mark.parametrize("target", ["order", "pay", "action", "top-up", "show password", "language"])
def test_client_post_without_a_csrf_token_is_refused_and_changes_nothing(guarded, customer, tariff, target):
    url, data = csrf_targets(customer, tariff)[target]
    before = state()

    refused = guarded.post(url, data)

    assert refused.status_code == 403
    assert state() == before
    # The same request with the token goes through: the token was the only thing missing.
    accepted = guarded.post(url, {**data, "csrfmiddlewaretoken": guarded.cookies[settings.CSRF_COOKIE_NAME].value})
    assert accepted.status_code in (200, 302)
    assert state() != before or target == "show password"


def test_registration_without_a_csrf_token_is_refused_and_creates_nothing(db):
    browser = Browser(enforce_csrf_checks=True)
    browser.get(reverse("register"))
    data = {"email": "new@example.com", "name": "New Co", "password": "a-long-unusual-passphrase"}

    refused = browser.post(reverse("register"), data)

    assert refused.status_code == 403
    assert not User.objects.exists()
    assert not Client.objects.exists()
    accepted = browser.post(reverse("register"), {**data, "csrfmiddlewaretoken": browser.cookies[settings.CSRF_COOKIE_NAME].value})
    assert accepted.status_code == 302
    assert User.objects.get().username == "new@example.com"


@pytest.mark.parametrize("next_url", ["https://evil.example/phish", "//evil.example/phish"])
def test_registration_does_not_redirect_to_another_site(client, db, next_url):
    data = {"email": "new@example.com", "name": "New Co", "password": "a-long-unusual-passphrase"}

    response = client.post(f"{reverse('register')}?next={next_url}", data)

    assert User.objects.get().username == "new@example.com"
    assert response.status_code == 302
    assert response["Location"] == reverse("client_area")


def test_login_does_not_redirect_to_another_site(client, db):
    UserFactory(username="bob@example.com")  # no client account: see test_lockout_of_one_account_does_not_affect_another

    response = client.post(f"{reverse('login')}?next=https://evil.example/phish", {"username": "bob@example.com", "password": PASSWORD})

    assert response.status_code == 302
    assert response["Location"] == reverse("client_area")


def test_login_without_a_csrf_token_is_refused(db, user):
    browser = Browser(enforce_csrf_checks=True)

    response = browser.post(reverse("login"), {"username": "ann@example.com", "password": PASSWORD})

    assert response.status_code == 403
    assert "_auth_user_id" not in browser.session


# The payment gateway's callback


@pytest.fixture
def callback_settings(settings):
    settings.PAYMENT_GATEWAYS = ["manual", "test"]
    settings.PAYMENT_CALLBACK_SECRET = "callback-secret-for-tests"
    return settings


@pytest.fixture
def pending(customer):
    return Payment.objects.create(client=customer, gateway="test", amount=Decimal("500.00"), currency="RUB", reference="PTEST01")


def callback(body, signature=None):
    """POST a callback as a gateway's server does: no cookies, no CSRF token, a signature header."""
    headers = {} if signature is None else {"X-Signature": signature}
    return Browser(enforce_csrf_checks=True).post(
        reverse("gateway_callback", args=["test"]), body, content_type="application/json", headers=headers
    )


def test_signed_callback_needs_no_csrf_token_and_credits_the_payment_once(callback_settings, customer, pending):
    body = json.dumps({"reference": "PTEST01", "status": "paid", "id": "gw-42"}).encode()

    first = callback(body, callback_signature(body))
    again = callback(body, callback_signature(body))

    assert (first.status_code, first.content, again.status_code) == (200, b"OK", 200)
    pending.refresh_from_db()
    assert (pending.status, pending.external_id) == (PaymentStatus.PAID, "gw-42")
    assert list(customer.ledger_entries.values_list("kind", "amount")) == [(LedgerEntryKind.TOPUP, Decimal("500.00"))]


@pytest.mark.parametrize(
    "signature",
    [None, "", "0" * 64, "signed-with-another-secret"],
    ids=["no signature", "empty", "zeros", "another secret"],
)
def test_callback_without_a_valid_signature_is_refused_and_credits_nothing(callback_settings, customer, pending, signature):
    body = json.dumps({"reference": "PTEST01", "status": "paid"}).encode()
    if signature == "signed-with-another-secret":
        callback_settings.PAYMENT_CALLBACK_SECRET = "another-secret"
        signature = callback_signature(body)
        callback_settings.PAYMENT_CALLBACK_SECRET = "callback-secret-for-tests"
    before = state()

    response = callback(body, signature)

    assert response.status_code == 400
    assert b"signature does not match" in response.content
    assert state() == before


def test_callback_with_a_body_other_than_the_signed_one_is_refused(callback_settings, customer, pending):
    signed = json.dumps({"reference": "PTEST01", "status": "pending"}).encode()
    forged = json.dumps({"reference": "PTEST01", "status": "paid"}).encode()
    before = state()

    response = callback(forged, callback_signature(signed))

    assert response.status_code == 400
    assert state() == before


@pytest.mark.parametrize("gateway", ["manual", "nonexistent"])
def test_callback_of_a_gateway_that_does_not_call_back_is_refused(callback_settings, customer, gateway):
    Payment.objects.create(client=customer, gateway="manual", amount=Decimal("500.00"), currency="RUB", reference="PMAN01")
    body = json.dumps({"reference": "PMAN01", "status": "paid"}).encode()
    before = state()

    response = Browser(enforce_csrf_checks=True).post(
        reverse("gateway_callback", args=[gateway]),
        body,
        content_type="application/json",
        headers={"X-Signature": callback_signature(body)},
    )

    assert response.status_code == 400
    assert state() == before


def test_callback_is_refused_while_no_callback_secret_is_configured(callback_settings, customer, pending):
    callback_settings.PAYMENT_CALLBACK_SECRET = ""
    body = json.dumps({"reference": "PTEST01", "status": "paid"}).encode()
    before = state()

    response = callback(body, "")

    assert response.status_code == 400
    assert state() == before


# Ordering: only what the shop-window offers, at the server's price


@pytest.mark.parametrize(("is_visible", "is_enabled"), [(False, True), (True, False), (False, False)])
@pytest.mark.parametrize("method", ["get", "post"])
def test_hidden_or_disabled_tariff_has_no_order_page(logged_in, customer, is_visible, is_enabled, method):
    tariff = TariffPlanFactory(is_visible=is_visible, is_enabled=is_enabled)
    top_up(customer, "1000.00")
    before = state()

    response = getattr(logged_in, method)(reverse("order", args=[tariff.pk]), order_data() if method == "post" else {})

    assert response.status_code == 404
    assert state() == before
    assert tariff.name not in logged_in.get(reverse("shop")).content.decode()


def test_order_of_a_tariff_that_does_not_exist_is_a_404(logged_in, db):
    assert logged_in.post(reverse("order", args=[999999]), order_data()).status_code == 404
    assert not Service.objects.exists()


def test_tampered_order_fields_change_neither_the_price_nor_the_tariff(logged_in, customer, tariff):
    cheap = TariffPlanFactory(name="Cheap", monthly_price=Decimal("1.00"))
    other = ClientFactory()

    response = logged_in.post(
        reverse("order", args=[tariff.pk]),
        order_data(
            databases="12",
            price="0.01",
            total="0.01",
            setup_fee="0",
            tariff=str(cheap.pk),
            client=str(other.pk),
            status="active",
            paid_at="2025-01-01",
            dedicated_ipv4="3",
        ),
    )

    service = Service.objects.get()
    assert response.status_code == 302
    assert (service.tariff, service.client, service.status, service.paid_at) == (tariff, customer, ServiceStatus.ORDERED, None)
    # 300.00 + 2 extra databases * 20.00; the setup fee as the tariff says.
    assert (service.price, service.setup_fee) == (Decimal("340.00"), Decimal("50.00"))
    assert dict(service.resources.values_list("kind", "quantity")) == {"databases": 12}


def test_order_for_a_period_the_tariff_is_not_sold_for_is_refused(logged_in, tariff):
    TariffPriceFactory(tariff=tariff, period=BillingPeriod.QUARTER, price=Decimal("850.00"))

    response = logged_in.post(reverse("order", args=[tariff.pk]), order_data(period="12"))

    assert response.status_code == 200
    assert response.context["form"].errors["period"] == ["Select a valid choice. 12 is not one of the available choices."]
    assert not Service.objects.exists()


@pytest.mark.parametrize(
    ("quantity", "message"),
    [
        ("51", "Databases: at most 50."),
        ("9", "Databases: at least 10 (included in the price)."),
        ("0", "Databases: at least 10 (included in the price)."),
        ("-1", "Ensure this value is greater than or equal to 0."),
        ("ten", "Enter a whole number."),
        ("10.5", "Enter a whole number."),
        ("", "This field is required."),
    ],
)
def test_order_with_a_quantity_out_of_range_shows_the_field_error_and_creates_nothing(logged_in, customer, tariff, quantity, message):
    before = state()

    response = logged_in.post(reverse("order", args=[tariff.pk]), order_data(databases=quantity))

    assert response.status_code == 200
    assert response.context["form"].errors["databases"] == [message]
    assert f'<p class="error" id="id_databases_error">{message}</p>' in response.content.decode()
    assert state() == before


def test_order_without_a_domain_for_shared_hosting_shows_the_error_and_creates_nothing(logged_in, tariff):
    response = logged_in.post(reverse("order", args=[tariff.pk]), order_data(domain=""))

    assert response.status_code == 200
    assert response.context["form"].errors["domain"] == ["This field is required."]
    assert not Service.objects.exists()


# Markup in a tariff's name


SCRIPT = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


@pytest.mark.parametrize("page", ["shop", "order", "client_area", "orders", "service_detail"])
def test_markup_in_a_tariff_name_is_escaped(logged_in, customer, page):
    tariff = TariffPlanFactory(name=SCRIPT, description=SCRIPT)
    service = ServiceFactory(client=customer, tariff=tariff)
    url = {
        "shop": reverse("shop"),
        "order": reverse("order", args=[tariff.pk]),
        "service_detail": reverse("service_detail", args=[service.pk]),
    }.get(page) or reverse(page)

    html = logged_in.get(url).content.decode()

    assert SCRIPT not in html
    assert ESCAPED in html


# Login rate limiting


def login(browser, username, password):
    return browser.post(reverse("login"), {"username": username, "password": password})


def test_five_wrong_passwords_lock_the_login_even_for_the_right_password(client, user):
    responses = [login(client, "ann@example.com", f"guess-{i}") for i in range(settings.AXES_FAILURE_LIMIT)]

    assert [r.status_code for r in responses] == [200] * (settings.AXES_FAILURE_LIMIT - 1) + [429]
    locked = login(client, "ann@example.com", PASSWORD)
    assert locked.status_code == 429
    assert "registration/locked_out.html" in [template.name for template in locked.templates]
    assert "Too many attempts" in locked.content.decode()
    assert "_auth_user_id" not in client.session
    # Another browser from the same address is locked out of this account too.
    assert login(Browser(), "ann@example.com", PASSWORD).status_code == 429


def test_lockout_of_one_account_does_not_affect_another(client, user):
    # A user without a client account: LoginView's language handling (see test_client_pages) stays out of the way.
    UserFactory(username="bob@example.com")
    for i in range(settings.AXES_FAILURE_LIMIT):
        login(client, "ann@example.com", f"guess-{i}")

    response = login(client, "bob@example.com", PASSWORD)

    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(User.objects.get(username="bob@example.com").pk)


def test_four_wrong_passwords_then_the_right_one_log_in(client, db):
    user = UserFactory(username="bob@example.com")
    for i in range(settings.AXES_FAILURE_LIMIT - 1):
        assert login(client, "bob@example.com", f"guess-{i}").status_code == 200

    assert login(client, "bob@example.com", PASSWORD).status_code == 302
    assert client.session["_auth_user_id"] == str(user.pk)


# Cookies


def test_session_and_csrf_cookies_are_secure_and_the_session_cookie_is_http_only(client, db):
    assert settings.DEBUG is False
    assert (settings.SESSION_COOKIE_SECURE, settings.CSRF_COOKIE_SECURE, settings.SESSION_COOKIE_HTTPONLY) == (True, True, True)
    UserFactory(username="bob@example.com")  # no client account: see test_lockout_of_one_account_does_not_affect_another

    page = client.get(reverse("login"))
    response = login(client, "bob@example.com", PASSWORD)

    assert page.cookies[settings.CSRF_COOKIE_NAME]["secure"] is True
    session_cookie = response.cookies[settings.SESSION_COOKIE_NAME]
    assert (session_cookie["secure"], session_cookie["httponly"], session_cookie["samesite"]) == (True, True, "Lax")
    assert "Secure" in session_cookie.output()
