"""Ordering a service, registering a client, and what a client may ask of its services.

The price is computed on the server; a refused order creates nothing and charges nothing.
"""

from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.choices import BillingPeriod, PanelAction, ProductType, ResourceKind, ServiceStatus, SuspendReason
from billing.models import Client, LedgerEntry, Service, ServiceResource
from billing.services import client_register, order_check, order_place, service_client_request
from provisioning.models import Operation
from tests.conftest import postgres_only, run_at_once
from tests.factories import (
    ClientFactory,
    ServiceFactory,
    TariffPlanFactory,
    TariffPriceFactory,
    TariffResourceFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

DB, MAIL, DISK, IPS = ResourceKind.DATABASES, ResourceKind.MAILBOXES, ResourceKind.DISK, ResourceKind.DEDICATED_IPV4


@pytest.fixture
def account():
    """The paying client, in roubles, with one user who orders."""
    client = ClientFactory(currency="RUB")
    client.users.add(UserFactory())
    return client


@pytest.fixture
def user(account):
    return account.users.get()


def make_tariff(**fields):
    """Shared hosting: 300.00 a month, 850.00 a quarter; databases 10 included (20.00 each above, at most 50),
    mailboxes 5 included (10.00 each above, no maximum)."""
    tariff = TariffPlanFactory(monthly_price=Decimal("300.00"), currency="RUB", **fields)
    TariffPriceFactory(tariff=tariff, period=BillingPeriod.QUARTER, price=Decimal("850.00"))
    TariffResourceFactory(tariff=tariff, kind=DB, included=10, unit_price=Decimal("20.00"), max_quantity=50)
    TariffResourceFactory(tariff=tariff, kind=MAIL, included=5, unit_price=Decimal("10.00"), max_quantity=None)
    return tariff


@pytest.fixture
def tariff():
    return make_tariff()


@pytest.fixture
def ip_tariff():
    """A tariff that sells dedicated IPs (none included, 150.00 each a month, at most 2) on ISPmanager Business."""
    tariff = make_tariff(allow_dedicated_ip=True)
    tariff.processing_module.edition = "business"
    tariff.processing_module.save()
    TariffResourceFactory(tariff=tariff, kind=IPS, included=0, unit_price=Decimal("150.00"), max_quantity=2)
    return tariff


def order(account, tariff, **fields):
    fields.setdefault("period", BillingPeriod.MONTH)
    fields.setdefault("domain", "example.com")
    return order_place(client=account, user=account.users.first(), tariff=tariff, **fields)


def refused(account, tariff, **fields) -> ValidationError:
    """Place an order that must be refused; check it left nothing behind; return the error."""
    ledger_before = list(LedgerEntry.objects.values_list("pk", "amount"))
    with pytest.raises(ValidationError) as error:
        order(account, tariff, **fields)
    assert not Service.objects.exists()
    assert not ServiceResource.objects.exists()
    assert not Operation.objects.exists()
    assert list(LedgerEntry.objects.values_list("pk", "amount")) == ledger_before
    return error.value


# --- The price and what an order creates -----------------------------------------------------------


def test_the_server_prices_extra_units_by_unit_price_and_months_and_keeps_the_setup_fee_apart(account, user):
    tariff = make_tariff(setup_fee=Decimal("100.00"))

    service = order(account, tariff, period=BillingPeriod.QUARTER, domain="  Example.COM. ", resources={DB: 12})

    service.refresh_from_db()
    # 850.00 for the quarter + 2 databases above the 10 included x 20.00 x 3 months.
    assert service.price == Decimal("970.00")
    assert service.setup_fee == Decimal("100.00")
    assert service.first_payment == Decimal("1070.00")
    assert dict(service.resources.values_list("kind", "quantity")) == {DB: 12, MAIL: 5}
    assert service.domain == "example.com"
    assert (service.status, service.period, service.paid_at) == (ServiceStatus.ORDERED, BillingPeriod.QUARTER, None)
    assert (service.client, service.ordered_by, service.tariff) == (account, user, tariff)
    # Ordering is not paying: nothing is charged and no panel work is queued yet.
    assert not LedgerEntry.objects.exists()
    assert not Operation.objects.exists()
    assert not service.status_changes.exists()


def test_an_order_of_the_included_amounts_costs_the_period_price(account, tariff):
    service = order(account, tariff, resources={DB: 10, MAIL: 5})

    assert service.price == Decimal("300.00")
    assert service.first_payment == Decimal("300.00")
    assert dict(service.resources.values_list("kind", "quantity")) == {DB: 10, MAIL: 5}


def test_every_priced_resource_adds_to_the_price(account, tariff):
    service = order(account, tariff, resources={DB: 50, MAIL: 8})

    # 300.00 + 40 x 20.00 + 3 x 10.00, one month.
    assert service.price == Decimal("1130.00")


def test_order_check_returns_the_normalized_domain_and_every_quantity_and_writes_nothing(account, tariff):
    domain, quantities = order_check(
        client=account, tariff=tariff, period=BillingPeriod.MONTH, domain=" Shop.Example.com.", resources={DB: 11}
    )

    assert (domain, quantities) == ("shop.example.com", {DB: 11, MAIL: 5})
    assert not Service.objects.exists()


@pytest.mark.parametrize(
    ("typed", "stored"),
    [("пример.рф", "пример.рф"), ("Пример.РФ.", "пример.рф"), ("xn--e1afmkfd.xn--p1ai", "xn--e1afmkfd.xn--p1ai")],
)
def test_an_internationalized_domain_is_accepted(account, tariff, typed, stored):
    service = order(account, tariff, domain=typed)

    assert Service.objects.get(pk=service.pk).domain == stored


def test_external_ftp_storage_is_ordered_without_a_domain(account):
    storage = TariffPlanFactory(product_type=ProductType.STORAGE, account_template="FTP storage", currency="RUB")
    assert storage.processing_module.product_type == ProductType.STORAGE

    service = order(account, storage, domain="")

    assert (service.domain, service.price, service.status) == ("", Decimal("300.00"), ServiceStatus.ORDERED)


def test_staff_may_order_a_tariff_hidden_from_the_shop_window(account):
    hidden = make_tariff(is_visible=False)

    service = order(account, hidden, by_staff=True)

    assert service.tariff == hidden
    assert service.price == Decimal("300.00")


def test_dedicated_ips_are_priced_like_any_resource_when_the_tariff_and_the_panel_allow_them(account, ip_tariff):
    service = order(account, ip_tariff, dedicated_ips=2)

    assert service.price == Decimal("600.00")  # 300.00 + 2 x 150.00
    assert service.resources.get(kind=IPS).quantity == 2


RESOURCE_KINDS = [kind for kind in ResourceKind.values if kind not in (ResourceKind.SHELL, ResourceKind.SSL, ResourceKind.CGI, IPS)]
MONEY = st.decimals(min_value=0, max_value=5000, places=2, allow_nan=False, allow_infinity=False)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    period=st.sampled_from(BillingPeriod.values),
    period_price=MONEY,
    setup_fee=MONEY,
    resources=st.lists(
        st.tuples(
            st.sampled_from(RESOURCE_KINDS),
            st.integers(min_value=0, max_value=100),  # included
            MONEY,  # unit price
            st.integers(min_value=0, max_value=40),  # units above the included amount
            st.booleans(),  # whether the order names the resource
        ),
        unique_by=lambda resource: resource[0],
        max_size=4,
    ),
)
def test_the_service_price_always_equals_the_published_formula(account, period, period_price, setup_fee, resources):
    with transaction.atomic():
        tariff = TariffPlanFactory(monthly_price=False, setup_fee=setup_fee, currency="RUB")
        TariffPriceFactory(tariff=tariff, period=period, price=period_price)
        wanted, expected_price, expected_quantities = {}, period_price, {}
        for kind, included, unit_price, extra, named in resources:
            TariffResourceFactory(tariff=tariff, kind=kind, included=included, unit_price=unit_price, max_quantity=None)
            if named:
                wanted[kind] = included + extra
                expected_price += Decimal(extra) * unit_price * Decimal(period)
            expected_quantities[kind] = wanted.get(kind, included)

        service = order(account, tariff, period=period, resources=wanted)
        service.refresh_from_db()

        assert service.price == expected_price
        assert service.setup_fee == setup_fee
        assert service.first_payment == expected_price + setup_fee
        assert dict(service.resources.values_list("kind", "quantity")) == expected_quantities
        transaction.set_rollback(True)


# --- Refused orders: the reason on its field, nothing created -------------------------------------


@pytest.mark.parametrize("by_staff", [False, True], ids=["client", "staff"])
def test_a_disabled_tariff_is_refused_even_for_staff_and_creates_nothing(account, by_staff):
    disabled = make_tariff(is_enabled=False)

    error = refused(account, disabled, by_staff=by_staff)

    assert error.messages == ["This tariff cannot be ordered."]
    assert error.code == "tariff"


def test_a_hidden_tariff_is_refused_to_a_client_and_creates_nothing(account):
    hidden = make_tariff(is_visible=False)

    error = refused(account, hidden)

    assert error.messages == ["This tariff cannot be ordered."]
    assert error.code == "tariff"


def test_a_period_the_tariff_is_not_sold_for_is_refused_and_creates_nothing(account, tariff):
    error = refused(account, tariff, period=BillingPeriod.YEAR)

    assert error.message_dict == {"period": ["This tariff is not sold for that period."]}


@pytest.mark.parametrize("domain", ["", "   ", ".", None])
def test_shared_hosting_without_a_domain_is_refused_and_creates_nothing(account, tariff, domain):
    error = refused(account, tariff, domain=domain)

    assert error.message_dict == {"domain": ["Enter the domain of the site, e.g. example.com."]}


LONG = "a" * 300 + ".com"


@pytest.mark.parametrize(
    ("domain", "message"),
    [
        ("not a domain", "not a domain is not a domain name: enter one like example.com."),
        ("exa mple.com", "exa mple.com is not a domain name: enter one like example.com."),
        ("-bad.com", "-bad.com is not a domain name: enter one like example.com."),
        ("bad-.com", "bad-.com is not a domain name: enter one like example.com."),
        ("1.2.3.4", "Enter a domain name, not an IP address."),
        ("example", "example is not a domain name: enter one like example.com."),
        ("example.com:8080", "example.com:8080 is not a domain name: enter one like example.com."),
        ("ex_ample.com", "ex_ample.com is not a domain name: enter one like example.com."),
        (LONG, f"{LONG} is not a domain name: enter one like example.com."),
    ],
)
def test_an_invalid_domain_is_refused_with_the_reason_and_creates_nothing(account, tariff, domain, message):
    error = refused(account, tariff, domain=domain)

    assert error.message_dict == {"domain": [message]}


def test_an_invalid_domain_is_refused_for_ftp_storage_too(account):
    storage = TariffPlanFactory(product_type=ProductType.STORAGE, currency="RUB")

    error = refused(account, storage, domain="exa mple.com")

    assert error.message_dict == {"domain": ["exa mple.com is not a domain name: enter one like example.com."]}


@pytest.mark.parametrize(
    ("kind", "message"),
    [(ResourceKind.SHELL, "Shell access cannot be ordered with this tariff."), ("gpus", "gpus cannot be ordered with this tariff.")],
)
def test_a_resource_the_tariff_does_not_have_is_refused_and_creates_nothing(account, tariff, kind, message):
    error = refused(account, tariff, resources={kind: 1})

    assert error.message_dict == {kind: [message]}


@pytest.mark.parametrize(
    ("quantity", "message"),
    [
        (9, "Databases: at least 10 (included in the price)."),
        (0, "Databases: at least 10 (included in the price)."),
        (-1, "Databases: at least 10 (included in the price)."),
        (51, "Databases: at most 50."),
        (10**9, "Databases: at most 50."),
        ("12", "Databases: enter a whole number."),
        (12.5, "Databases: enter a whole number."),
        (Decimal("12"), "Databases: enter a whole number."),
        (None, "Databases: enter a whole number."),
        (True, "Databases: enter a whole number."),
    ],
    ids=["below-included", "zero", "negative", "above-max", "huge", "string", "float", "decimal", "none", "bool"],
)
def test_a_quantity_outside_what_the_tariff_allows_is_refused_and_creates_nothing(account, tariff, quantity, message):
    error = refused(account, tariff, resources={DB: quantity})

    assert error.message_dict == {DB: [message]}


def test_a_tariff_in_another_currency_than_the_clients_is_refused_and_creates_nothing(tariff):
    dollars = ClientFactory(currency="USD")
    dollars.users.add(UserFactory())

    error = refused(dollars, tariff)

    assert error.message_dict == {"tariff": ["This tariff is priced in RUB and your account in USD."]}


def test_every_problem_of_an_order_is_reported_at_once(account, tariff):
    error = refused(account, tariff, period=BillingPeriod.YEAR, domain="", resources={DB: 99, MAIL: 1})

    assert set(error.message_dict) == {"period", "domain", DB, MAIL}


def test_dedicated_ips_on_a_tariff_that_does_not_offer_them_are_refused_and_create_nothing(account, tariff):
    error = refused(account, tariff, dedicated_ips=1)

    assert error.message_dict == {IPS: ["This tariff does not offer dedicated IP addresses."]}


def test_dedicated_ips_named_among_the_resources_are_refused_the_same_way(account, tariff):
    error = refused(account, tariff, resources={IPS: 1})

    assert error.message_dict == {IPS: ["This tariff does not offer dedicated IP addresses."]}


def test_dedicated_ips_on_ispmanager_lite_are_refused_and_create_nothing(account, ip_tariff):
    ip_tariff.processing_module.edition = "lite"
    ip_tariff.processing_module.save()

    error = refused(account, ip_tariff, dedicated_ips=1)

    assert error.message_dict == {IPS: ["Dedicated IP addresses cannot be ordered here: ISPmanager Lite does not hand them out."]}


@pytest.mark.parametrize(
    ("dedicated_ips", "message"),
    [(3, "Dedicated IPv4 addresses: at most 2."), (-1, "Dedicated IPv4 addresses: at least 0 (included in the price)."), ("1", None)],
)
def test_dedicated_ips_outside_the_resources_limits_are_refused_and_create_nothing(account, ip_tariff, dedicated_ips, message):
    error = refused(account, ip_tariff, dedicated_ips=dedicated_ips)

    assert error.message_dict == {IPS: [message or "Dedicated IPv4 addresses: enter a whole number."]}


def test_an_on_off_resource_cannot_be_ordered_more_than_once(account, tariff):
    TariffResourceFactory(tariff=tariff, kind=ResourceKind.SSL, included=0, unit_price=Decimal("100.00"), max_quantity=None)

    error = refused(account, tariff, resources={ResourceKind.SSL: 5})

    assert list(error.message_dict) == [ResourceKind.SSL]


# --- Registration -------------------------------------------------------------------------------------


def test_registration_makes_a_user_who_logs_in_with_the_lower_cased_email_and_a_client_for_it():
    client = client_register(email="Alice.Smith@Example.COM", name="Alice Smith", password="s3cret-Passw0rd", language="ru")

    user = get_user_model().objects.get()
    assert user.username == user.email == "alice.smith@example.com"
    assert user.check_password("s3cret-Passw0rd")
    assert (client.name, client.email, client.language) == ("Alice Smith", "alice.smith@example.com", "ru")
    assert list(client.users.all()) == [user]
    assert Client.objects.get().pk == client.pk


@pytest.mark.parametrize("again", ["alice@example.com", "ALICE@EXAMPLE.COM", "Alice@example.com"])
def test_a_second_registration_with_the_same_email_is_refused_on_the_email(again):
    client_register(email="alice@example.com", name="Alice", password="s3cret-Passw0rd", language="en")

    with pytest.raises(ValidationError) as error:
        client_register(email=again, name="Someone else", password="other-Passw0rd", language="en")

    assert error.value.message_dict == {"email": ["An account with this email already exists: log in, or reset the password."]}
    assert get_user_model().objects.count() == 1
    assert list(Client.objects.values_list("name", flat=True)) == ["Alice"]


@postgres_only()
@pytest.mark.django_db(transaction=True)
def test_simultaneous_registrations_with_one_email_make_one_account_and_refuse_the_rest_on_the_email():
    outcomes = run_at_once(
        4,
        lambda i: client_register(
            email=f"{'BOB' if i % 2 else 'bob'}@example.com", name=f"Bob {i}", password="s3cret-Passw0rd", language="en"
        ),
    )

    assert get_user_model().objects.count() == Client.objects.count() == 1
    assert sum(outcome is None for outcome in outcomes) == 1
    assert [type(outcome) for outcome in outcomes if outcome is not None] == [ValidationError] * 3


# --- What a client may ask of its own services -----------------------------------------------------------


def test_a_client_suspending_an_active_service_queues_a_suspend_marked_as_the_clients(account, user):
    service = ServiceFactory(client=account, status=ServiceStatus.ACTIVE)

    service_client_request(service=service, action=PanelAction.SUSPEND, user=user, confirmed=True)

    operation = Operation.objects.get()
    assert (operation.service, operation.action, operation.payload) == (service, PanelAction.SUSPEND, {"suspend_reason": "client"})
    assert (operation.requested_by, operation.reason) == (user, "asked by the client")
    # The service changes once the panel has done it.
    service.refresh_from_db()
    assert service.status == ServiceStatus.ACTIVE


def test_a_client_may_resume_what_it_suspended(account, user):
    service = ServiceFactory(client=account, status=ServiceStatus.SUSPENDED, suspend_reason=SuspendReason.CLIENT)

    service_client_request(service=service, action=PanelAction.RESUME, user=user)

    assert Operation.objects.get().action == PanelAction.RESUME


@pytest.mark.parametrize("reason", [SuspendReason.STAFF, SuspendReason.NONPAYMENT])
def test_a_client_cannot_resume_a_service_it_did_not_suspend(account, user, reason):
    service = ServiceFactory(client=account, status=ServiceStatus.SUSPENDED, suspend_reason=reason)

    with pytest.raises(ValidationError) as error:
        service_client_request(service=service, action=PanelAction.RESUME, user=user)

    assert error.value.messages == ["Only a service you suspended yourself can be resumed here: please contact support."]
    assert not Operation.objects.exists()
    service.refresh_from_db()
    assert (service.status, service.suspend_reason) == (ServiceStatus.SUSPENDED, reason)


@pytest.mark.parametrize("action", [PanelAction.SET_LIMITS, PanelAction.CHANGE_PASSWORD, PanelAction.SYNC, PanelAction.OPEN, "reboot"])
def test_an_action_other_than_suspend_resume_or_close_is_refused_to_a_client(account, user, action):
    service = ServiceFactory(client=account, status=ServiceStatus.ACTIVE)

    with pytest.raises(ValidationError) as error:
        service_client_request(service=service, action=action, user=user)

    assert error.value.messages == ["This action is not available."]
    assert not Operation.objects.exists()


def test_a_client_closing_an_unpaid_order_deletes_it_at_once(account, user):
    service = ServiceFactory(client=account)

    service_client_request(service=service, action=PanelAction.CLOSE, user=user, confirmed=True)

    service.refresh_from_db()
    assert service.status == ServiceStatus.DELETED
    assert not Operation.objects.exists()


def test_a_client_closing_an_active_service_queues_the_account_deletion(account, user):
    service = ServiceFactory(client=account, status=ServiceStatus.ACTIVE)

    service_client_request(service=service, action=PanelAction.CLOSE, user=user, confirmed=True)

    assert Operation.objects.get().action == PanelAction.CLOSE
    service.refresh_from_db()
    assert service.status == ServiceStatus.ACTIVE


@pytest.mark.parametrize("action", [PanelAction.SUSPEND, PanelAction.CLOSE])
@pytest.mark.parametrize("status", [ServiceStatus.ORDERED, ServiceStatus.ACTIVE])
def test_a_client_suspending_or_deleting_without_confirming_is_refused_and_nothing_changes(account, user, action, status):
    service = ServiceFactory(client=account, status=status)

    with pytest.raises(ValidationError) as error:
        service_client_request(service=service, action=action, user=user)

    assert error.value.messages == ["Please confirm first: nothing was changed."]
    assert not Operation.objects.exists()
    service.refresh_from_db()
    assert service.status == status


def test_dedicated_ips_need_a_priced_resource_on_the_tariff_so_they_are_never_free(account):
    tariff = make_tariff(allow_dedicated_ip=True)

    error = refused(account, tariff, dedicated_ips=1)

    assert error.message_dict == {IPS: ["Dedicated IPv4 addresses cannot be ordered with this tariff."]}
