"""Hostile input on every client-facing form and endpoint gets a page or an error message, never a 5xx.

Each value goes into one field at a time, the others valid, so that it reaches the code behind the
field's own check. Orders, top-ups, callbacks and service actions also must leave nothing behind.
"""

import json
from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import quote

import pytest
from django.contrib.auth.tokens import default_token_generator
from django.urls import path, reverse
from django.utils import translation
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from billing.api.models import ApiToken
from billing.choices import BillingPeriod, LedgerEntryKind, PanelAction, PaymentStatus, ResourceKind, ServiceStatus
from billing.models import LedgerEntry, Payment, Service, ServiceResource
from billing.payments import MAX_TOPUP, MIN_TOPUP, callback_signature, payment_start
from billing.services import client_register, ledger_entry_add, order_place
from provisioning.models import Operation
from tests.factories import ServiceFactory, TariffPlanFactory, TariffResourceFactory
from tests.server_errors import ServerErrorLog

HOSTILE = [
    str(2**63),
    str(2**64),
    "1" + "0" * 100,
    "9" * 5000,  # more digits than int() converts
    "-1",
    "-9223372036854775809",
    "NaN",
    "Infinity",
    "-Infinity",
    "1e999",
    "1E+5",
    "0x10",
    "²",  # a digit to str.isdigit(), not to int()
    "١٢",  # Arabic-Indic digits
    "\u202egnp.exe",
    "😀",
    "e\u0301\u0301\u0301",
    "\x00",
    "a\x00b",
    "\x01\x1b\x7f",
    "\r\nSet-Cookie: x=1",
    "A" * 10_240,
    "",
    " ",
    "<script>alert(1)</script>",
    "../../etc/passwd",
    "%00%ff",
    "' OR '1'='1",
]
# One of each kind, for values compared with a fixed list (actions, gateways, languages) and for headers.
SOME_HOSTILE = [str(2**64), "-1", "NaN", "1e999", "²", "\u202e😀e\u0301", "a\x00b", "\r\nX: 1", "A" * 10_240, ""]
# Query strings that are not even UTF-8: Django must decode them itself.
RAW_QUERIES = ["page=%ff%fe&amount=%c0%af&show=%00&next=%ff&service=%ff", "page=" + "9" * 5000 + "&service=" + "9" * 5000]
PASSWORD = "a-long-client-password-42"
QUERY_PARAMS = ["page", "amount", "show", "next", "service", "action", "q"]


def broken_view(request):
    raise ZeroDivisionError("a bug")


# Only for test_a_server_error_is_seen_as_a_failure_not_raised (pytest.mark.urls points here).
urlpatterns = [path("broken/", broken_view)]


@pytest.mark.urls("tests.test_no_server_errors")
def test_a_server_error_is_seen_as_a_failure_not_raised(db, settings, fuzz):
    assert settings.DEBUG is False  # the page a visitor would get, not the debug page

    response = fuzz.open("/broken/")

    assert response.status_code == 500
    assert len(fuzz.failures) == 1
    assert fuzz.failures[0].startswith("GET /broken/")
    assert "ZeroDivisionError: a bug" in fuzz.failures[0]


@pytest.fixture
def shop(db, settings):
    """A client with money, an unpaid order, an active service with a panel password, and a pending top-up."""
    settings.PAYMENT_GATEWAYS = ["manual"]
    settings.PAYMENT_CALLBACK_SECRET = "tests-callback-secret"
    tariff = TariffPlanFactory(monthly_price=Decimal("300.00"), currency="RUB")
    TariffResourceFactory(tariff=tariff, kind=ResourceKind.DATABASES, included=1, unit_price=Decimal("20.00"), max_quantity=None)
    TariffResourceFactory(tariff=tariff, kind=ResourceKind.MAILBOXES, included=5, unit_price=Decimal("10.00"), max_quantity=50)
    customer = client_register(email="ann@example.com", name="Ann's Bakery", password=PASSWORD, language="en")
    ledger_entry_add(client=customer, kind=LedgerEntryKind.TOPUP, amount=Decimal("1000.00"))
    unpaid = order_place(client=customer, user=customer.users.get(), tariff=tariff, period=BillingPeriod.MONTH, domain="ann.example")
    active = ServiceFactory(
        client=customer,
        tariff=tariff,
        status=ServiceStatus.ACTIVE,
        panel_password="panel-Secret-42",
        price=Decimal("300.00"),
        period_anchor=datetime(2026, 1, 31, 10, tzinfo=UTC),
        expires_at=datetime(2030, 1, 31, 10, tzinfo=UTC),
    )
    payment, _start = payment_start(client=customer, gateway_code="manual", amount="250.00")
    return {"tariff": tariff, "customer": customer, "user": customer.users.get(), "unpaid": unpaid, "active": active, "payment": payment}


@pytest.fixture
def fuzz():
    return ServerErrorLog()


def logged_in(fuzz, shop):
    fuzz.browser.force_login(shop["user"])
    return fuzz


def footprint():
    """What a refused request must not change."""
    return (
        list(Service.objects.values_list("pk", "status", "price")),
        Service.objects.count(),
        ServiceResource.objects.count(),
        list(LedgerEntry.objects.values_list("pk", "amount")),
        Operation.objects.count(),
        list(Payment.objects.values_list("pk", "status")),
    )


def client_pages(shop):
    return [
        reverse("shop"),
        reverse("order", args=[shop["tariff"].pk]),
        reverse("client_area"),
        reverse("balance"),
        reverse("orders"),
        reverse("payment_detail", args=[shop["payment"].pk]),
        reverse("service_detail", args=[shop["active"].pk]),
        reverse("service_detail", args=[shop["unpaid"].pk]),
        reverse("service_action", args=[shop["active"].pk]),
        reverse("service_renew", args=[shop["active"].pk]),
        reverse("notifications"),
        reverse("password_change"),
        reverse("api_tokens"),
    ]


def public_pages(shop):
    return [
        reverse("shop"),
        reverse("order", args=[shop["tariff"].pk]),
        reverse("register"),
        reverse("login"),
        reverse("password_reset"),
        reverse("password_reset_done"),
        reverse("password_reset_complete"),
    ]


@pytest.mark.parametrize(("language", "values"), [("en", HOSTILE), ("ru", SOME_HOSTILE)], ids=["en", "ru"])
def test_every_page_with_hostile_query_strings_answers_without_server_error(shop, fuzz, language, values):
    with translation.override(language):
        public, private = public_pages(shop), client_pages(shop)
    for url in public:
        for value in values:
            fuzz.open(url, dict.fromkeys(QUERY_PARAMS, value))
        for raw in RAW_QUERIES:
            fuzz.open(f"{url}?{raw}")
    logged_in(fuzz, shop)
    for url in private:
        for value in values:
            fuzz.open(url, dict.fromkeys(QUERY_PARAMS, value))
        for raw in RAW_QUERIES:
            fuzz.open(f"{url}?{raw}")

    assert not fuzz.failures, fuzz.report()
    assert fuzz.requests == (len(public) + len(private)) * (len(values) + len(RAW_QUERIES))


def test_hostile_addresses_answer_without_server_error(shop, fuzz):
    logged_in(fuzz, shop)
    for value in HOSTILE:
        segment = quote(value, safe="")
        for url in (
            f"/{segment}/",
            f"/order/{segment}/",
            f"/account/services/{segment}/",
            f"/account/payments/{segment}/",
            f"/accounts/reset/{segment}/{segment}/",
            f"/ru/{segment}/",
        ):
            fuzz.open(url)
    for number in (str(2**63), str(2**64), "1" + "0" * 100, "0"):
        for name in ("service_detail", "service_pay", "service_action"):
            fuzz.open(reverse(name, args=[1]).replace("/1/", f"/{number}/"), {"action": "suspend", "confirm": "yes"}, method="post")
        fuzz.open(f"/account/payments/{number}/")
        fuzz.open(f"/order/{number}/", {"period": "1", "domain": "ann.example"}, method="post")
    # More fields than Django reads, and a body larger than it keeps in memory.
    fuzz.open(reverse("balance"), {f"f{index}": "x" for index in range(1_100)}, method="post")
    fuzz.open(reverse("balance"), {"amount": "1" * 3_000_000, "gateway": "manual"}, method="post")

    assert not fuzz.failures, fuzz.report()


def order_data(shop, **overrides):
    return {"period": str(BillingPeriod.MONTH), "domain": "new.example", "databases": "1", "mailboxes": "5", **overrides}


@pytest.mark.parametrize("field", ["period", "domain", "databases", "mailboxes", "dedicated_ipv4", "then"])
def test_the_order_form_with_hostile_values_answers_without_server_error_and_orders_nothing(shop, fuzz, field):
    url = reverse("order", args=[shop["tariff"].pk])
    before = footprint()
    for value in HOSTILE:
        fuzz.open(url, order_data(shop, **{field: value}), method="post")  # not logged in: kept for after sign-up
    logged_in(fuzz, shop)
    fuzz.open(url)  # the kept values come back in the form
    for value in HOSTILE:
        fuzz.open(url, order_data(shop, **{field: value}), method="post")

    assert not fuzz.failures, fuzz.report()
    if field in ("dedicated_ipv4", "then"):
        return  # not fields of this tariff's form: those orders are valid ones
    # Django reads "١٢" (Arabic-Indic digits) as 12: that one is a real order, unpaid. Nothing else is ordered.
    services, *rest = footprint()
    new = [service for service in services if service not in before[0]]
    assert [ServiceResource.objects.get(service=pk, kind=field).quantity for pk, _status, _price in new] in ([], [12])
    assert rest[2:] == list(before[3:])


def test_sign_up_with_hostile_values_answers_without_server_error(shop, fuzz):
    url = reverse("register")
    for index, value in enumerate(HOSTILE):
        for data in (
            {"email": value, "name": "Ann", "password": PASSWORD},
            {"email": f"a{index}+{value[:20]}@example.com", "name": "Ann", "password": PASSWORD},
            {"email": f"name{index}@example.com", "name": value, "password": PASSWORD},
            {"email": f"pw{index}@example.com", "name": "Ann", "password": value},
            {"email": "a" * 140 + value[:20] + "@example.com", "name": "Ann", "password": PASSWORD},
        ):
            fuzz.open(url, data, method="post")
            fuzz.browser.logout()

    assert not fuzz.failures, fuzz.report()


def test_login_logout_and_password_reset_with_hostile_values_answer_without_server_error(shop, fuzz):
    for value in HOSTILE:
        fuzz.open(reverse("login"), {"username": value, "password": "wrong"}, method="post")
        fuzz.open(reverse("login"), {"username": "ann@example.com", "password": value}, method="post")
        fuzz.open(reverse("login") + "?next=" + quote(value, safe=""), {"username": "ann@example.com", "password": value}, method="post")
        fuzz.open(reverse("password_reset"), {"email": value}, method="post")
        fuzz.open(reverse("logout"), {"next": value}, method="post")
        fuzz.open(reverse("admin:login"), {"username": value, "password": value}, method="post")
    # The emailed link's form: a genuine link, then hostile new passwords.
    uid, token = urlsafe_base64_encode(force_bytes(shop["user"].pk)), default_token_generator.make_token(shop["user"])
    form_url = fuzz.open(reverse("password_reset_confirm", args=[uid, token])).url
    for value in HOSTILE:
        fuzz.open(form_url, {"new_password1": value, "new_password2": value}, method="post")
    # Headers a visitor controls, on the page that records them.
    for value in SOME_HOSTILE:
        header = value.encode("utf-8", "replace").decode("latin-1")  # what a WSGI server hands Django
        for name in ("User-Agent", "Accept-Language", "X-Forwarded-For", "Cookie", "Referer", "Accept"):
            fuzz.open(reverse("login"), {"username": "ann@example.com", "password": "wrong"}, method="post", headers={name: header})
            fuzz.open(reverse("shop"), headers={name: header})

    assert not fuzz.failures, fuzz.report()


@pytest.mark.parametrize("trusted", [{}, {"TRUSTED_PROXY_COUNT": 1}, {"TRUSTED_PROXIES": ["127.0.0.1"]}], ids=["direct", "count", "list"])
def test_forwarded_for_headers_answer_without_server_error_behind_a_proxy_or_not(shop, fuzz, settings, trusted):
    for name, setting in trusted.items():
        setattr(settings, name, setting)
    for value in [*SOME_HOSTILE, "1.2.3.4, ::1, 999.1.1.1", "unknown", "::ffff:1.2.3.4", "[::1]:80", ", , ,"]:
        header = value.encode("utf-8", "replace").decode("latin-1")
        data = {"username": "ann@example.com", "password": "wrong"}
        fuzz.open(reverse("login"), data, method="post", headers={"X-Forwarded-For": header})

    assert not fuzz.failures, fuzz.report()


def test_language_switch_with_hostile_values_answers_without_server_error(shop, fuzz):
    for value in SOME_HOSTILE:
        fuzz.open(reverse("set_language"), {"language": value, "next": "/"}, method="post")
        fuzz.open(reverse("set_language"), {"language": "ru", "next": value}, method="post")
    logged_in(fuzz, shop)
    for value in HOSTILE:
        fuzz.open(reverse("set_language"), {"language": value, "next": value}, method="post")

    assert not fuzz.failures, fuzz.report()
    assert shop["customer"].__class__.objects.get(pk=shop["customer"].pk).language in ("en", "ru")


def test_top_up_with_hostile_values_answers_without_server_error_and_no_payment_out_of_bounds(shop, fuzz):
    logged_in(fuzz, shop)
    for value in HOSTILE:
        fuzz.open(reverse("balance") + "?service=" + quote(value, safe=""), {"amount": value, "gateway": "manual"}, method="post")
    for value in SOME_HOSTILE:
        fuzz.open(reverse("balance"), {"amount": "100.00", "gateway": value}, method="post")

    assert not fuzz.failures, fuzz.report()
    # "1E+5" is a number: it may become a top-up, but only a pending one within the limits.
    for amount, status in Payment.objects.exclude(pk=shop["payment"].pk).values_list("amount", "status"):
        assert MIN_TOPUP <= amount <= MAX_TOPUP
        assert status == PaymentStatus.PENDING
    assert list(LedgerEntry.objects.values_list("amount", flat=True)) == [Decimal("1000.00")]


def test_service_pay_actions_and_show_password_with_hostile_values_answer_without_server_error(shop, fuzz):
    logged_in(fuzz, shop)
    active, unpaid = shop["active"], shop["unpaid"]
    for value in SOME_HOSTILE:
        for service in (active, unpaid):
            fuzz.open(reverse("service_action", args=[service.pk]), {"action": value, "confirm": "yes"}, method="post")
            fuzz.open(reverse("service_action", args=[service.pk]), {"action": value})
            fuzz.open(reverse("service_action", args=[service.pk]), {"action": "close", "confirm": value}, method="post")
    for value in HOSTILE:
        response = fuzz.open(reverse("service_detail", args=[active.pk]), {"password": value}, method="post")
        assert "panel-Secret-42" not in response.content.decode(errors="replace")
        fuzz.open(reverse("password_change"), {"old_password": value, "new_password1": value, "new_password2": value}, method="post")
        fuzz.open(reverse("service_pay", args=[unpaid.pk]), {"anything": value}, method="post")
        fuzz.browser.force_login(shop["user"])  # a locked-out "show password" may log the session out

    assert not fuzz.failures, fuzz.report()
    # Paying the unpaid order is a real payment, made once; every action was refused or waits for a "yes".
    assert sorted(LedgerEntry.objects.values_list("amount", flat=True)) == [Decimal("-300.00"), Decimal("1000.00")]
    assert list(Operation.objects.values_list("service", "action")) == [(unpaid.pk, PanelAction.OPEN)]
    assert Service.objects.get(pk=active.pk).status == ServiceStatus.ACTIVE


def test_api_tokens_page_with_hostile_values_answers_without_server_error_and_makes_only_named_read_tokens(shop, fuzz):
    logged_in(fuzz, shop)
    valid = {"name": "Shop site", "scopes": "read", "expires": "90", "password": PASSWORD}
    for field in ["name", "scopes", "expires", "password"]:  # the password last: wrong ones lock the login out
        for value in HOSTILE:
            fuzz.open(reverse("api_tokens"), {**valid, field: value}, method="post")
            fuzz.open(reverse("api_token_revoke", args=[1]), {"confirm": value}, method="post")
            fuzz.browser.force_login(shop["user"])

    assert not fuzz.failures, fuzz.report()
    # Only a hostile value that is a fine name (stripped, as names are) made a token, and each one as asked: read only.
    assert set(ApiToken.objects.values_list("name", flat=True)) <= {value.strip() for value in HOSTILE}
    assert all(scopes == ["read"] for scopes in ApiToken.objects.values_list("scopes", flat=True))


def test_renew_now_and_auto_renew_with_hostile_values_answer_without_server_error_and_charge_nothing(shop, fuzz):
    logged_in(fuzz, shop)
    active = shop["active"]
    renew, switch = reverse("service_renew", args=[active.pk]), reverse("service_auto_renew", args=[active.pk])
    seen = active.expires_at.isoformat()
    before = footprint()
    for value in HOSTILE:
        fuzz.open(renew, {"periods": value, "expires": seen, "confirm": "yes"}, method="post")
        fuzz.open(renew, {"periods": "1", "expires": value, "confirm": "yes"}, method="post")
        fuzz.open(renew, {"periods": value, "expires": value})
        fuzz.open(switch, {"enabled": value}, method="post")
    for value in SOME_HOSTILE:
        fuzz.open(renew, {"periods": "1", "expires": seen, "confirm": value}, method="post")

    assert not fuzz.failures, fuzz.report()
    assert footprint() == before
    assert Service.objects.get(pk=active.pk).auto_renew is True  # only "on" and "off" switch it


def test_payment_callbacks_with_hostile_headers_bodies_and_gateways_answer_without_server_error(shop, fuzz):
    payment = shop["payment"]
    url = reverse("gateway_callback", args=["test"])
    genuine = f'{{"reference": "{payment.reference}", "status": "paid"}}'.encode()
    for value in HOSTILE:
        header = value.encode("utf-8", "replace").decode("latin-1")
        raw = value.encode("utf-8", "replace")
        fuzz.open(url, genuine, method="post", content_type="application/json", headers={"X-Signature": header})
        fuzz.open(url, genuine, method="post", content_type="application/json", headers={"X-Signature": value})
        fuzz.open(url, raw, method="post", content_type="application/json", headers={"X-Signature": callback_signature(raw)})
        signed = json.dumps({"reference": value, "status": value, "id": value}).encode()
        fuzz.open(url, signed, method="post", content_type="application/json", headers={"X-Signature": callback_signature(signed)})
        fuzz.open(f"/payments/callback/{quote(value, safe='')}/", genuine, method="post", content_type="application/json")
    for body in (b"\xff\xfe\x00", b"[" * 100_000, b'{"reference": 1e999, "status": "paid"}', b'{"reference": ["P"], "status": "paid"}'):
        fuzz.open(url, body, method="post", content_type="application/json", headers={"X-Signature": callback_signature(body)})

    assert not fuzz.failures, fuzz.report()
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PENDING
    assert list(LedgerEntry.objects.values_list("amount", flat=True)) == [Decimal("1000.00")]
