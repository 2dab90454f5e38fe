"""Numbers and texts that do not fit their columns are refused with a message before anything is written.

Before these bounds, `databases=9223372036854775807` on a resource without a maximum stored an order
priced ~9.2e18 on SQLite (every page showing it then failed on read) and was a server error on PostgreSQL.
"""

from decimal import Decimal

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.urls import reverse
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from billing.choices import BillingPeriod, LedgerEntryKind, PaymentStatus, ResourceKind
from billing.models import Client, LedgerEntry, Payment, Service, ServiceResource, TariffResource
from billing.payments import callback_signature, payment_start
from billing.services import ledger_entry_add, order_place
from tests.billing.test_admin_tariff_plan import ADD_URL as TARIFF_ADD_URL
from tests.billing.test_admin_tariff_plan import assert_nothing_saved, inline_errors, tariff_data
from tests.factories import ProcessingModuleFactory, TariffPlanFactory, TariffResourceFactory

pytestmark = pytest.mark.django_db

DB = ResourceKind.DATABASES
# Written out, not imported: the test says what the product promises.
MOST_UNITS = 10_000_000
MOST_MONEY = Decimal("9999999999.99")


@pytest.fixture
def tariff():
    """300.00 a month; databases: 1 included, 20.00 each above, no maximum."""
    tariff = TariffPlanFactory(monthly_price=Decimal("300.00"), currency="RUB")
    TariffResourceFactory(tariff=tariff, kind=DB, included=1, unit_price=Decimal("20.00"), max_quantity=None)
    return tariff


def assert_nothing_ordered_or_charged(customer):
    assert not Service.objects.exists()
    assert not ServiceResource.objects.exists()
    assert list(customer.ledger_entries.values_list("kind", "amount")) == [(LedgerEntryKind.TOPUP, Decimal("1000.00"))]


@pytest.mark.parametrize("quantity", [str(2**63 - 1), str(2**63), str(2**64), "1" + "0" * 100, str(MOST_UNITS + 1)])
def test_an_order_form_with_a_huge_quantity_says_so_and_stores_nothing(logged_in, customer, tariff, quantity):
    ledger_entry_add(client=customer, kind=LedgerEntryKind.TOPUP, amount=Decimal("1000.00"))

    response = logged_in.post(reverse("order", args=[tariff.pk]), {"period": BillingPeriod.MONTH, "domain": "ann.example", DB: quantity})

    assert response.status_code == 200
    assert response.context["form"].errors[DB] == [f"Ensure this value is less than or equal to {MOST_UNITS}."]
    assert_nothing_ordered_or_charged(customer)


def test_an_order_of_the_most_units_is_accepted_and_one_more_is_refused_by_the_service(customer, tariff):
    with pytest.raises(ValidationError) as refused:
        order_place(client=customer, user=None, tariff=tariff, period=BillingPeriod.MONTH, domain="ann.example", resources={DB: 2**63})

    assert refused.value.message_dict == {DB: [f"Databases: at most {MOST_UNITS}."]}
    assert not Service.objects.exists()
    most = {DB: MOST_UNITS}
    service = order_place(client=customer, user=None, tariff=tariff, period=BillingPeriod.MONTH, domain="a.example", resources=most)
    assert service.price == Decimal("300.00") + (MOST_UNITS - 1) * Decimal("20.00")


def test_a_tariff_maximum_above_the_bound_is_held_to_the_bound(customer, tariff):
    TariffResource.objects.filter(tariff=tariff).update(max_quantity=2**31 - 1)  # written before the bound existed

    with pytest.raises(ValidationError) as refused:
        order_place(client=customer, user=None, tariff=tariff, period=BillingPeriod.MONTH, domain="ann.example", resources={DB: 2**31 - 1})

    assert refused.value.message_dict == {DB: [f"Databases: at most {MOST_UNITS}."]}


@pytest.mark.parametrize(
    ("monthly", "setup_fee", "unit_price", "databases", "period"),
    [
        (MOST_MONEY, Decimal("0.01"), Decimal("0"), 1, BillingPeriod.MONTH),
        (Decimal("300.00"), Decimal("0"), MOST_MONEY, 2, BillingPeriod.MONTH),
        (Decimal("300.00"), Decimal("0"), Decimal("1000.00"), MOST_UNITS, BillingPeriod.TWO_YEARS),
    ],
    ids=["price-plus-setup-fee", "one-extra-unit", "most-units-for-two-years"],
)
def test_an_order_whose_price_does_not_fit_the_money_columns_is_refused_and_stores_nothing(
    logged_in, customer, monthly, setup_fee, unit_price, databases, period
):
    ledger_entry_add(client=customer, kind=LedgerEntryKind.TOPUP, amount=Decimal("1000.00"))
    tariff = TariffPlanFactory(monthly_price=monthly, setup_fee=setup_fee, currency="RUB")
    tariff.prices.update_or_create(period=period, defaults={"price": monthly})
    TariffResourceFactory(tariff=tariff, kind=DB, included=1, unit_price=unit_price, max_quantity=None)

    response = logged_in.post(reverse("order", args=[tariff.pk]), {"period": period, "domain": "ann.example", DB: str(databases)})

    assert response.status_code == 200
    assert response.context["form"].non_field_errors() == [
        "This order costs more than can be billed at once: order fewer resources or a shorter period."
    ]
    assert_nothing_ordered_or_charged(customer)


def test_an_order_costing_exactly_the_most_money_is_placed(customer):
    tariff = TariffPlanFactory(monthly_price=MOST_MONEY - Decimal("100.00"), setup_fee=Decimal("100.00"), currency="RUB")

    service = order_place(client=customer, user=None, tariff=tariff, period=BillingPeriod.MONTH, domain="ann.example")

    service.refresh_from_db()
    assert (service.price, service.first_payment) == (MOST_MONEY - Decimal("100.00"), MOST_MONEY)


@pytest.mark.parametrize(
    ("field", "value"),
    [("included", str(MOST_UNITS + 1)), ("max_quantity", str(MOST_UNITS + 1)), ("included", str(2**63 - 1)), ("max_quantity", str(2**63))],
)
def test_a_tariff_resource_above_the_bound_is_refused_in_the_admin_and_not_saved(admin_client, field, value):
    row = {"kind": "databases", "included": "1", "unit_price": "20.00", field: value}

    response = admin_client.post(TARIFF_ADD_URL, tariff_data(ProcessingModuleFactory(), resources=[row]))

    assert response.status_code == 200
    # The largest values also break the column's own bound, which says so too.
    assert f"Enter at most {MOST_UNITS}." in inline_errors(response, "resources")
    assert_nothing_saved()


@pytest.mark.parametrize(
    "amount", [MOST_MONEY + Decimal("0.01"), -MOST_MONEY - Decimal("0.01"), Decimal("1e30"), Decimal("NaN"), Decimal("-Infinity")]
)
def test_a_ledger_amount_that_does_not_fit_the_column_is_refused(customer, amount):
    with pytest.raises(ValidationError) as refused:
        ledger_entry_add(client=customer, kind=LedgerEntryKind.ADJUSTMENT, amount=amount)

    assert refused.value.messages == ["Enter an amount of at most 9,999,999,999.99."]
    assert not LedgerEntry.objects.exists()


def test_a_ledger_amount_of_the_most_money_is_added(customer):
    entry = ledger_entry_add(client=customer, kind=LedgerEntryKind.ADJUSTMENT, amount=-MOST_MONEY)

    entry.refresh_from_db()
    assert entry.amount == -MOST_MONEY


# --- Sign-up: the email becomes the login (User.username, 150 characters) ---------------------------------


def email_of_length(length, domain="example.com"):
    return "a" * (length - len(domain) - 1) + "@" + domain


def sign_up(client, email):
    return client.post(reverse("register"), {"email": email, "name": "Ann", "password": "a-long-client-password-42"})


@pytest.mark.parametrize("length", [151, 200, 254])
def test_sign_up_with_an_email_longer_than_a_login_says_so_and_creates_nothing(client, db, length):
    response = sign_up(client, email_of_length(length))

    assert response.status_code == 200
    assert response.context["form"].errors["email"] == [f"Ensure this value has at most 150 characters (it has {length})."]
    assert not get_user_model().objects.exists()
    assert not Client.objects.exists()


def test_sign_up_with_an_email_that_grows_past_a_login_when_lower_cased_says_so_and_creates_nothing(client, db):
    # "İ" lower-cases to two characters: 150 typed characters become 151 stored ones.
    email = email_of_length(150, domain="İ" + "x" * 20 + ".example")

    response = sign_up(client, email)

    assert response.status_code == 200
    assert response.context["form"].errors["email"] == ["Use an email of at most 150 characters: it becomes your login."]
    assert not get_user_model().objects.exists()
    assert not Client.objects.exists()


def test_sign_up_with_an_email_of_150_characters_creates_the_account(client, db):
    email = email_of_length(150)

    response = sign_up(client, email)

    assert response.status_code == 302
    assert get_user_model().objects.get().username == email


# --- Payment callbacks ----------------------------------------------------------------------------------


@pytest.fixture
def pending(settings, customer):
    settings.PAYMENT_GATEWAYS = ["manual", "test"]
    settings.PAYMENT_CALLBACK_SECRET = "tests-callback-secret"
    payment, _start = payment_start(client=customer, gateway_code="manual", amount="250.00")
    return payment


def post_callback(client, body, signature):
    return client.post(
        reverse("gateway_callback", args=["test"]), body, content_type="application/json", headers={"X-Signature": signature}
    )


@pytest.mark.parametrize("signature", ["подпись", "sig\u00e9", "😀" * 64, "\u202e" + "a" * 63], ids=["cyrillic", "latin-1", "emoji", "rtl"])
def test_a_callback_with_a_non_ascii_signature_is_refused_with_400_and_credits_nothing(client, pending, signature):
    body = f'{{"reference": "{pending.reference}", "status": "paid"}}'.encode()

    response = post_callback(client, body, signature)

    assert (response.status_code, response.content.decode()) == (400, "The callback's signature does not match.")
    pending.refresh_from_db()
    assert pending.status == PaymentStatus.PENDING
    assert not LedgerEntry.objects.exists()


@pytest.mark.parametrize(
    "payload",
    [
        '{"reference": "P\\u0000", "status": "paid"}',
        '{"reference": "%s", "status": "paid"}' % ("P" * 41),
        '{"reference": "", "status": "paid"}',
        '{"reference": "Pé", "status": "paid"}',
        '{"reference": "REF", "status": "paid", "id": "%s"}' % ("x" * 101),
        '{"reference": "REF", "status": "paid", "id": "gw\\r\\n1"}',
        "[" * 10_000 + "]" * 10_000,
    ],
    ids=["nul", "41-characters", "empty", "non-ascii", "101-character-id", "crlf-id", "deeply-nested"],
)
def test_a_signed_callback_naming_what_no_column_holds_is_refused_with_400_and_credits_nothing(client, pending, payload):
    body = payload.replace("REF", pending.reference).encode()

    response = post_callback(client, body, callback_signature(body))

    assert (response.status_code, response.content.decode()) == (400, "The callback could not be read.")
    assert Payment.objects.get().status == PaymentStatus.PENDING
    assert not LedgerEntry.objects.exists()


# --- Logins: what the login limits record must fit their columns -----------------------------------------


@pytest.mark.parametrize("header", ["User-Agent", "Accept", "Accept-Language", "X-Forwarded-For"])
@pytest.mark.parametrize("value", ["bot\x00", "a\r\nb", "\x1b[31m"], ids=["nul", "crlf", "escape"])
def test_a_request_whose_headers_hold_control_characters_is_refused_with_400_and_records_nothing(client, user, header, value):
    response = client.post(reverse("login"), {"username": user.username, "password": "wrong"}, headers={header: value})

    assert (response.status_code, response.content.decode()) == (400, "A header of this request holds control characters.")
    assert not AccessAttempt.objects.exists()


def test_a_header_with_a_tab_or_latin_1_text_is_served(client, db):
    response = client.get(reverse("shop"), headers={"User-Agent": "Mozilla/5.0\t(X11)", "Accept-Language": "ru-RU,ru;q=0.9\u00e9"})

    assert response.status_code == 200


def test_failures_with_an_over_long_login_are_recorded_cut_to_the_column_and_lock_that_login(client, db, settings):
    settings.AXES_FAILURE_LIMIT = 3
    login = "a" * 10_000

    statuses = [client.post(reverse("login"), {"username": login, "password": "wrong"}).status_code for _ in range(4)]

    assert statuses == [200, 200, 429, 429]
    assert list(AccessAttempt.objects.values_list("username", flat=True)) == ["a" * 255]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    monthly=st.decimals(min_value=0, max_value=MOST_MONEY, places=2),
    setup_fee=st.decimals(min_value=0, max_value=MOST_MONEY, places=2),
    unit_price=st.decimals(min_value=0, max_value=MOST_MONEY, places=2),
    included=st.integers(min_value=0, max_value=MOST_UNITS),
    extra=st.integers(min_value=0, max_value=2**70),
    period=st.sampled_from(BillingPeriod.values),
)
def test_an_order_is_refused_or_stored_with_amounts_that_read_back(customer, monthly, setup_fee, unit_price, included, extra, period):
    tariff = TariffPlanFactory(monthly_price=False, setup_fee=setup_fee, currency="RUB")
    tariff.prices.create(period=period, price=monthly)
    TariffResourceFactory(tariff=tariff, kind=DB, included=included, unit_price=unit_price, max_quantity=None)
    wanted = {DB: included + extra}

    try:
        service = order_place(client=customer, user=None, tariff=tariff, period=period, domain="ann.example", resources=wanted)
    except ValidationError:
        event("refused")
        assert not Service.objects.filter(tariff=tariff).exists()
        return
    event("placed")

    service.refresh_from_db()  # a stored amount the column cannot hold fails here on SQLite
    assert included + extra <= MOST_UNITS
    assert service.price == monthly + extra * unit_price * period
    assert service.first_payment <= MOST_MONEY
