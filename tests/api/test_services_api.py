"""/api/v1/services: what a client's token and a staff token may see and do, each through the pages' own services."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from billing.api.tokens import token_create
from billing.choices import BillingPeriod, LedgerEntryKind, PanelAction, ProductType, ResourceKind, ServiceStatus, SuspendReason
from billing.models import LedgerEntry, Service
from billing.selectors import client_balance
from billing.services import ledger_entry_add
from provisioning.choices import OperationStatus
from provisioning.models import Operation
from tests.factories import (
    ClientFactory,
    IPAssignmentFactory,
    OperationFactory,
    ServiceFactory,
    ServiceResourceFactory,
    StaffUserFactory,
    TariffPlanFactory,
    TariffResourceFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def utc(*parts):
    return datetime(*parts, tzinfo=UTC)


@pytest.fixture(autouse=True)
def on_a_fixed_day(settings):
    """2026-02-10 in UTC: the active services below are paid until 2026-02-28 10:00."""
    settings.TIME_ZONE = "UTC"
    with time_machine.travel(utc(2026, 2, 10, 12), tick=False):
        yield


def bearer(user, *scopes) -> dict:
    """The headers of a request made with a fresh token of `user` (read and write unless `scopes` say otherwise)."""
    _token, plaintext = token_create(user=user, name="test", scopes=list(scopes or ("read", "write")))
    return {"HTTP_AUTHORIZATION": f"Bearer {plaintext}"}


def client_user(client=None):
    """A client with a user of its own; returns (client, user)."""
    client = client or ClientFactory()
    user = UserFactory()
    client.users.add(user)
    return client, user


def active_service(client=None, *, balance="25.00", **fields) -> Service:
    """10.00 a month, anchored 2026-01-31 10:00, paid until 2026-02-28 10:00; `balance` put on the client's balance."""
    fields = {"status": ServiceStatus.ACTIVE, "period_anchor": utc(2026, 1, 31, 10), "expires_at": utc(2026, 2, 28, 10)} | fields
    service = ServiceFactory(client=client or ClientFactory(), price=Decimal("10.00"), **fields)
    if Decimal(balance):
        ledger_entry_add(client=service.client, kind=LedgerEntryKind.TOPUP, amount=Decimal(balance))
    return service


def charges(client) -> list[Decimal]:
    return list(LedgerEntry.objects.filter(client=client, kind=LedgerEntryKind.CHARGE).values_list("amount", flat=True))


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def ann():
    """A client's user and its token headers."""
    customer, user = client_user()
    return customer, user, bearer(user)


@pytest.fixture
def staff():
    return bearer(StaffUserFactory())


# Reading


def test_a_client_lists_its_own_services_and_staff_every_one(api, ann, staff):
    customer, _user, auth = ann
    mine = ServiceFactory(client=customer)
    other = ServiceFactory()

    own = api.get("/api/v1/services", **auth)
    every = api.get("/api/v1/services", **staff)

    assert own.status_code == 200
    assert [row["id"] for row in own.json()["results"]] == [mine.pk]
    assert [row["id"] for row in every.json()["results"]] == [other.pk, mine.pk]


def test_the_detail_shows_resources_addresses_login_expiry_and_price_never_the_password(api, ann):
    customer, _user, auth = ann
    service = active_service(customer, panel_username="ann1", panel_password="s3cret-Panel")
    ServiceResourceFactory(service=service, kind=ResourceKind.DATABASES, quantity=12)
    IPAssignmentFactory(service=service, address="10.0.0.9")
    IPAssignmentFactory(service=service, address="10.0.0.10")
    IPAssignmentFactory(service=service, address="10.0.0.11", released_at=utc(2026, 2, 1))

    answer = api.get(f"/api/v1/services/{service.pk}", **auth)

    assert answer.status_code == 200
    data = answer.json()
    assert data["resources"] == [{"kind": "databases", "quantity": 12}]
    assert data["ip_addresses"] == ["10.0.0.9", "10.0.0.10"]
    assert data["panel_username"] == "ann1"
    assert data["expires_at"] == "2026-02-28T10:00:00Z"
    assert data["price"] == "10.00"
    assert data["status"] == "active"
    assert data["pending_action"] is None
    assert "s3cret-Panel" not in answer.content.decode()


def test_addresses_of_both_families_are_listed_ipv4_first_in_numeric_order(api, ann):
    customer, _user, auth = ann
    service = active_service(customer)
    for address in ("10.0.0.20", "2001:db8::1", "10.0.0.3"):
        IPAssignmentFactory(service=service, address=address)

    listed = api.get("/api/v1/services", **auth).json()["results"][0]["ip_addresses"]
    detail = api.get(f"/api/v1/services/{service.pk}", **auth).json()["ip_addresses"]

    assert listed == detail == ["10.0.0.3", "10.0.0.20", "2001:db8::1"]


def test_another_clients_service_is_a_404_for_reading_and_for_every_action(api, ann):
    _customer, _user, auth = ann
    theirs = active_service()
    before = client_balance(client=theirs.client)

    assert api.get(f"/api/v1/services/{theirs.pk}", **auth).status_code == 404
    for path in ("renew", "pay", "suspend", "resume", "delete", "change", "change/preview"):
        answer = api.post(
            f"/api/v1/services/{theirs.pk}/{path}", {"periods": 1, "confirm": True}, format="json", HTTP_IDEMPOTENCY_KEY=path, **auth
        )
        assert answer.status_code == 404, path
        assert answer.json()["code"] == "not_found"
    assert api.patch(f"/api/v1/services/{theirs.pk}", {"auto_renew": False}, format="json", **auth).status_code == 404
    assert api.get(f"/api/v1/services/{theirs.pk}/password", **bearer(_user, "read", "secrets")).status_code == 404

    theirs.refresh_from_db()
    assert (theirs.status, theirs.auto_renew, theirs.expires_at) == (ServiceStatus.ACTIVE, True, utc(2026, 2, 28, 10))
    assert client_balance(client=theirs.client) == before
    assert not Operation.objects.exists()


def test_without_a_token_401_and_a_read_token_cannot_write(api, ann):
    customer, user, _auth = ann
    service = active_service(customer)

    assert api.get("/api/v1/services").status_code == 401
    refused = api.post(
        f"/api/v1/services/{service.pk}/renew", {"periods": 1}, format="json", HTTP_IDEMPOTENCY_KEY="r", **bearer(user, "read")
    )

    assert refused.status_code == 403
    assert refused.json()["code"] == "permission_denied"
    assert charges(customer) == []


def test_filters_by_status_product_type_and_expiry(api, staff):
    storage = TariffPlanFactory(product_type=ProductType.STORAGE)
    soon = active_service(expires_at=utc(2026, 2, 20, 10), balance="0")
    later = active_service(balance="0")
    ordered = ServiceFactory(tariff=storage)

    def ids(query):
        answer = api.get(f"/api/v1/services?{query}", **staff)
        assert answer.status_code == 200, answer.content
        return [row["id"] for row in answer.json()["results"]]

    assert ids("status=ordered") == [ordered.pk]
    assert ids("product_type=storage") == [ordered.pk]
    assert ids("expires_before=2026-02-25T00:00:00Z") == [soon.pk]
    assert ids("expires_after=2026-02-25T00:00:00Z") == [later.pk]
    assert ids(f"client={soon.client_id}") == [soon.pk]
    assert ids("ordering=expires_at&status=active") == [soon.pk, later.pk]
    assert api.get("/api/v1/services?status=nonsense", **staff).status_code == 400


@pytest.mark.parametrize("who", ["staff", "client"])
def test_the_list_reads_200_services_in_a_fixed_number_of_queries(api, django_assert_num_queries, who):
    customer, user = client_user()
    auth = bearer(StaffUserFactory() if who == "staff" else user)
    tariff = TariffPlanFactory()
    for _ in range(200):
        service = ServiceFactory(client=customer, tariff=tariff)
        ServiceResourceFactory(service=service)
        IPAssignmentFactory(service=service)
        OperationFactory(service=service, status=OperationStatus.QUEUED)
    api.get("/api/v1/me", **auth)  # the token's last use is written once a minute: not in the count below

    # token; (the client's account); count; services with their tariff and pending action; resources; addresses
    with django_assert_num_queries(5 if who == "staff" else 6):
        answer = api.get("/api/v1/services?page_size=200", **auth)

    assert answer.status_code == 200
    assert len(answer.json()["results"]) == 200
    assert answer.json()["results"][0]["pending_action"] == "open"


# Ordering


@pytest.fixture
def shop_tariff():
    tariff = TariffPlanFactory(monthly_price=Decimal("300.00"), setup_fee=Decimal("50.00"))
    TariffResourceFactory(tariff=tariff, kind=ResourceKind.DATABASES, included=10, unit_price=Decimal("20.00"), max_quantity=50)
    return tariff


def test_a_client_orders_for_itself_priced_on_the_server_and_nothing_is_charged_yet(api, ann, shop_tariff):
    customer, user, auth = ann
    body = {"tariff": shop_tariff.pk, "period": BillingPeriod.MONTH, "domain": "Shop.Example.com", "resources": {"databases": 12}}

    answer = api.post("/api/v1/services", body, format="json", HTTP_IDEMPOTENCY_KEY="order-1", **auth)

    assert answer.status_code == 201, answer.content
    service = Service.objects.get()
    assert (service.client, service.ordered_by, service.status) == (customer, user, ServiceStatus.ORDERED)
    data = answer.json()
    assert data["id"] == service.pk
    # 300.00 a month + 2 databases over the 10 included at 20.00; the setup fee comes with the first payment.
    assert (data["price"], data["setup_fee"], data["first_payment"]) == ("340.00", "50.00", "390.00")
    assert data["domain"] == "shop.example.com"
    assert {row["kind"]: row["quantity"] for row in data["resources"]} == {"databases": 12}
    assert charges(customer) == []


def test_an_order_the_service_refuses_says_why_by_field_and_creates_nothing(api, ann, shop_tariff):
    _customer, _user, auth = ann
    body = {"tariff": shop_tariff.pk, "period": BillingPeriod.YEAR, "domain": "shop.example.com", "resources": {"databases": 99}}

    answer = api.post("/api/v1/services", body, format="json", HTTP_IDEMPOTENCY_KEY="order-1", **auth)

    assert answer.status_code == 400
    assert answer.json()["fields"] == {
        "period": ["This tariff is not sold for that period."],
        "databases": ["Databases: at most 50."],
    }
    assert not Service.objects.exists()


def test_a_hidden_tariff_cannot_be_ordered_by_a_client_but_staff_order_it_for_a_client(api, ann, staff):
    customer, _user, auth = ann
    hidden = TariffPlanFactory(is_visible=False)
    body = {"tariff": hidden.pk, "period": BillingPeriod.MONTH, "domain": "a.example.com"}

    refused = api.post("/api/v1/services", body, format="json", HTTP_IDEMPOTENCY_KEY="o", **auth)
    placed = api.post("/api/v1/services", body | {"client": customer.pk}, format="json", HTTP_IDEMPOTENCY_KEY="o", **staff)

    assert refused.status_code == 400
    assert refused.json()["message"] == "This tariff cannot be ordered."
    assert placed.status_code == 201
    assert Service.objects.get().client == customer


def test_staff_say_which_client_and_a_client_cannot_order_for_another(api, ann, staff, shop_tariff):
    _customer, _user, auth = ann
    other = ClientFactory()
    body = {"tariff": shop_tariff.pk, "period": BillingPeriod.MONTH, "domain": "a.example.com"}

    without_client = api.post("/api/v1/services", body, format="json", HTTP_IDEMPOTENCY_KEY="o", **staff)
    for_another = api.post("/api/v1/services", body | {"client": other.pk}, format="json", HTTP_IDEMPOTENCY_KEY="o", **auth)

    assert without_client.status_code == 400
    assert without_client.json()["fields"] == {"client": ["Say which client the order is for."]}
    assert for_another.status_code == 400
    assert list(for_another.json()["fields"]) == ["client"]
    assert not Service.objects.exists()


def test_staff_need_the_admins_permission_to_order(api, shop_tariff):
    clerk = UserFactory(is_staff=True)
    body = {"tariff": shop_tariff.pk, "period": BillingPeriod.MONTH, "domain": "a.example.com", "client": ClientFactory().pk}

    refused = api.post("/api/v1/services", body, format="json", HTTP_IDEMPOTENCY_KEY="o", **bearer(clerk))
    clerk.user_permissions.add(Permission.objects.get(codename="add_service"))
    placed = api.post("/api/v1/services", body, format="json", HTTP_IDEMPOTENCY_KEY="o", **bearer(UserFactory(username=clerk.username)))

    assert refused.status_code == 403
    assert placed.status_code == 201


# Paying


def test_paying_an_order_charges_its_first_payment_and_answers_202_with_the_account_creation(
    api, ann, tasks, django_capture_on_commit_callbacks
):
    customer, _user, auth = ann
    service = ServiceFactory(client=customer, price=Decimal("300.00"), setup_fee=Decimal("50.00"))
    ledger_entry_add(client=customer, kind=LedgerEntryKind.TOPUP, amount=Decimal("400.00"))

    with django_capture_on_commit_callbacks(execute=True):
        answer = api.post(f"/api/v1/services/{service.pk}/pay", format="json", HTTP_IDEMPOTENCY_KEY="pay-1", **auth)

    assert answer.status_code == 202, answer.content
    assert answer.json()["service"]["status"] == "processing"
    assert answer.json()["operation"]["action"] == "open"
    assert answer.json()["operation"]["status"] == "queued"
    assert charges(customer) == [Decimal("-350.00")]
    assert len(tasks.pending()) == 1


def test_paying_without_the_money_says_how_much_is_missing_and_charges_nothing(api, ann):
    customer, _user, auth = ann
    service = ServiceFactory(client=customer, price=Decimal("300.00"))
    ledger_entry_add(client=customer, kind=LedgerEntryKind.TOPUP, amount=Decimal("100.00"))

    answer = api.post(f"/api/v1/services/{service.pk}/pay", format="json", HTTP_IDEMPOTENCY_KEY="pay-1", **auth)

    assert answer.status_code == 400
    assert answer.json()["code"] == "insufficient_funds"
    assert answer.json()["message"].startswith("Not enough money on the balance: ")
    service.refresh_from_db()
    assert (service.status, service.paid_at) == (ServiceStatus.ORDERED, None)
    assert charges(customer) == []
    assert not Operation.objects.exists()


# Renewing


def test_a_renewal_is_201_with_the_new_expiry_and_one_charge(api, ann):
    customer, _user, auth = ann
    service = active_service(customer)

    answer = api.post(
        f"/api/v1/services/{service.pk}/renew",
        {"periods": 2, "expected_expiry": "2026-02-28T10:00:00Z"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="renew-1",
        **auth,
    )

    assert answer.status_code == 201, answer.content
    assert answer.json()["service"]["expires_at"] == "2026-04-30T10:00:00Z"
    assert answer.json()["operation"] is None
    assert charges(customer) == [Decimal("-20.00")]


def test_a_renewal_for_too_many_periods_says_so_in_the_requests_language_and_charges_nothing(api, ann):
    customer, _user, auth = ann
    service = active_service(customer)

    english = api.post(f"/api/v1/services/{service.pk}/renew", {"periods": 13}, format="json", HTTP_IDEMPOTENCY_KEY="r1", **auth)
    russian = api.post(
        f"/api/v1/services/{service.pk}/renew", {"periods": 13}, format="json", HTTP_IDEMPOTENCY_KEY="r2", HTTP_ACCEPT_LANGUAGE="ru", **auth
    )

    assert english.status_code == russian.status_code == 400
    assert english.json()["fields"] == {"periods": ["Renew for 1 to 12 periods."]}
    assert russian.json()["fields"] == {"periods": ["Продлить можно на 1–12 периодов."]}  # noqa: RUF001 (the translation's dash)
    assert charges(customer) == []
    service.refresh_from_db()
    assert service.expires_at == utc(2026, 2, 28, 10)


def test_a_renewal_already_made_elsewhere_charges_nothing(api, ann):
    customer, _user, auth = ann
    service = active_service(customer)
    body = {"periods": 1, "expected_expiry": "2026-01-31T10:00:00Z"}  # not the expiry now: renewed meanwhile

    answer = api.post(f"/api/v1/services/{service.pk}/renew", body, format="json", HTTP_IDEMPOTENCY_KEY="r", **auth)

    assert answer.status_code == 400
    assert answer.json()["code"] == "already_renewed"
    assert charges(customer) == []


def test_a_client_cannot_renew_what_staff_suspended_but_staff_can(api, ann, staff):
    customer, _user, auth = ann
    service = active_service(customer, status=ServiceStatus.SUSPENDED, suspend_reason=SuspendReason.ABUSE)

    refused = api.post(f"/api/v1/services/{service.pk}/renew", {"periods": 1}, format="json", HTTP_IDEMPOTENCY_KEY="r", **auth)
    assert refused.status_code == 400
    assert refused.json()["message"] == f"Service #{service.pk} cannot be renewed here: please contact support."
    assert charges(customer) == []

    renewed = api.post(f"/api/v1/services/{service.pk}/renew", {"periods": 1}, format="json", HTTP_IDEMPOTENCY_KEY="r", **staff)
    assert renewed.status_code == 201
    assert charges(customer) == [Decimal("-10.00")]


# Changing


@pytest.fixture
def upgrade(ann):
    """Ann's service on a 10.00 tariff that may move to a 40.00 one, on the same module."""
    customer, _user, _auth = ann
    service = active_service(customer, balance="100.00")
    small = service.tariff
    big = TariffPlanFactory(processing_module=small.processing_module, monthly_price=Decimal("40.00"))
    small.allowed_changes.add(big)
    return service, big


def test_a_change_preview_needs_no_key_and_changes_nothing(api, ann, upgrade):
    customer, _user, auth = ann
    service, big = upgrade

    answer = api.post(f"/api/v1/services/{service.pk}/change/preview", {"tariff": big.pk}, format="json", **auth)

    assert answer.status_code == 200, answer.content
    data = answer.json()
    # 30.00 more a month for 18 of February's 28 days (the 10th to the 28th) = 19.29.
    assert (data["old_price"], data["new_price"], data["charge"], data["credit"]) == ("10.00", "40.00", "19.29", "0.00")
    assert (data["days_left"], data["days_in_period"]) == (18, 28)
    service.refresh_from_db()
    assert service.tariff_id != big.pk
    assert charges(customer) == []


def test_a_change_charges_the_rest_of_the_period_and_queues_the_new_limits(api, ann, upgrade):
    customer, _user, auth = ann
    service, big = upgrade

    answer = api.post(
        f"/api/v1/services/{service.pk}/change",
        {"tariff": big.pk, "expected_price": "10.00"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="c",
        **auth,
    )

    assert answer.status_code == 202, answer.content
    assert answer.json()["service"]["tariff"] == big.pk
    assert answer.json()["service"]["price"] == "40.00"
    assert answer.json()["operation"]["action"] == "set_limits"
    assert charges(customer) == [Decimal("-19.29")]


def test_a_change_to_a_tariff_not_offered_says_so_and_charges_nothing(api, ann, upgrade):
    customer, _user, auth = ann
    service, _big = upgrade
    elsewhere = TariffPlanFactory(monthly_price=Decimal("40.00"))

    for path in ("change/preview", "change"):
        answer = api.post(
            f"/api/v1/services/{service.pk}/{path}", {"tariff": elsewhere.pk}, format="json", HTTP_IDEMPOTENCY_KEY="c", **auth
        )
        assert answer.status_code == 400
        assert answer.json()["fields"] == {"tariff": [f"Service #{service.pk} cannot be changed to this tariff."]}
    assert charges(customer) == []
    assert not Operation.objects.exists()


def test_staff_change_that_moves_money_needs_the_ledger_permission(api, upgrade):
    service, big = upgrade
    clerk = UserFactory(is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename="change_service"))

    answer = api.post(f"/api/v1/services/{service.pk}/change", {"tariff": big.pk}, format="json", HTTP_IDEMPOTENCY_KEY="c", **bearer(clerk))

    assert answer.status_code == 403
    assert answer.json()["message"] == "Only staff who may add ledger entries can make a change that charges or credits money."
    assert charges(service.client) == []


# Auto-renew, suspend, resume, delete


def test_auto_renew_is_switched_with_a_patch_and_switching_it_again_says_so(api, ann):
    customer, _user, auth = ann
    service = active_service(customer, balance="0")

    off = api.patch(f"/api/v1/services/{service.pk}", {"auto_renew": False}, format="json", **auth)
    again = api.patch(f"/api/v1/services/{service.pk}", {"auto_renew": False}, format="json", **auth)
    wrong = api.patch(f"/api/v1/services/{service.pk}", {"auto_renew": "maybe"}, format="json", **auth)

    assert off.status_code == 200
    assert off.json()["auto_renew"] is False
    assert again.status_code == 400
    assert again.json()["message"] == f"Auto-renew of service #{service.pk} is already off."
    assert wrong.status_code == 400
    assert list(wrong.json()["fields"]) == ["auto_renew"]
    assert api.put(f"/api/v1/services/{service.pk}", {"auto_renew": True}, format="json", **auth).status_code == 405


def test_a_client_confirms_a_suspension_which_is_then_queued_for_the_panel(api, ann):
    customer, _user, auth = ann
    service = active_service(customer, balance="0")

    unconfirmed = api.post(f"/api/v1/services/{service.pk}/suspend", {}, format="json", **auth)
    assert unconfirmed.status_code == 400
    assert unconfirmed.json()["message"] == "Please confirm first: nothing was changed."
    assert not Operation.objects.exists()

    confirmed = api.post(f"/api/v1/services/{service.pk}/suspend", {"confirm": True}, format="json", **auth)
    assert confirmed.status_code == 202
    operation = Operation.objects.get()
    assert (operation.action, operation.payload) == (PanelAction.SUSPEND, {"suspend_reason": "client"})
    assert confirmed.json()["operation"]["id"] == operation.pk
    assert confirmed.json()["service"]["pending_action"] == "suspend"


def test_a_client_resumes_only_what_it_suspended(api, ann):
    customer, _user, auth = ann
    by_staff = active_service(customer, balance="0", status=ServiceStatus.SUSPENDED, suspend_reason=SuspendReason.STAFF)
    by_client = active_service(customer, balance="0", status=ServiceStatus.SUSPENDED, suspend_reason=SuspendReason.CLIENT)

    refused = api.post(f"/api/v1/services/{by_staff.pk}/resume", format="json", **auth)
    resumed = api.post(f"/api/v1/services/{by_client.pk}/resume", format="json", **auth)

    assert refused.status_code == 400
    assert refused.json()["message"] == "Only a service you suspended yourself can be resumed here: please contact support."
    assert resumed.status_code == 202
    assert list(Operation.objects.values_list("service_id", "action")) == [(by_client.pk, PanelAction.RESUME)]


def test_deleting_an_unpaid_order_is_immediate_and_an_account_goes_through_the_panel(api, ann):
    customer, _user, auth = ann
    order = ServiceFactory(client=customer)
    running = active_service(customer, balance="0")

    cancelled = api.post(f"/api/v1/services/{order.pk}/delete", {"confirm": True}, format="json", **auth)
    unconfirmed = api.post(f"/api/v1/services/{running.pk}/delete", {}, format="json", **auth)
    requested = api.post(f"/api/v1/services/{running.pk}/delete", {"confirm": True}, format="json", **auth)

    assert cancelled.status_code == 200
    assert cancelled.json()["service"]["status"] == "deleted"
    assert cancelled.json()["operation"] is None
    assert unconfirmed.status_code == 400
    assert requested.status_code == 202
    assert requested.json()["operation"]["action"] == "close"
    assert api.delete(f"/api/v1/services/{running.pk}", **auth).status_code == 405


def test_staff_suspend_for_abuse_with_the_admins_permission(api):
    service = active_service(balance="0")
    clerk = UserFactory(is_staff=True)

    refused = api.post(f"/api/v1/services/{service.pk}/suspend", {"reason": "abuse"}, format="json", **bearer(clerk))
    clerk.user_permissions.add(Permission.objects.get(codename="change_service"))
    done = api.post(f"/api/v1/services/{service.pk}/suspend", {"reason": "abuse"}, format="json", **bearer(clerk))

    assert refused.status_code == 403
    assert done.status_code == 202
    operation = Operation.objects.get()
    assert (operation.action, operation.payload, operation.requested_by) == (PanelAction.SUSPEND, {"suspend_reason": "abuse"}, clerk)


# The panel password


def test_the_panel_password_needs_the_secrets_scope_and_is_the_clients_only(api, ann, staff):
    customer, user, _auth = ann
    service = active_service(customer, balance="0", panel_username="ann1", panel_password="s3cret-Panel")

    without = api.get(f"/api/v1/services/{service.pk}/password", **bearer(user, "read", "write"))
    shown = api.get(f"/api/v1/services/{service.pk}/password", **bearer(user, "read", "secrets"))
    staff_secret = bearer(StaffUserFactory(), "read", "secrets")

    assert without.status_code == 403
    assert shown.status_code == 200
    assert shown.json() == {"panel_username": "ann1", "password": "s3cret-Panel"}
    assert api.get(f"/api/v1/services/{service.pk}/password", **staff_secret).status_code == 403


def test_a_service_without_a_password_says_so(api, ann):
    customer, user, _auth = ann
    order = ServiceFactory(client=customer)

    answer = api.get(f"/api/v1/services/{order.pk}/password", **bearer(user, "read", "secrets"))

    assert answer.status_code == 400
    assert answer.json()["code"] == "no_password"


@pytest.mark.parametrize("value", ["0675-10-10T17:58:43.23+16:04", "0001-01-01T00:00:00+23:59", "not a time"])
def test_a_time_filter_out_of_the_databases_range_is_a_400(value, django_user_model):
    """PostgreSQL refuses UTC offsets beyond ±15:59 that Python accepts: the filter speaks UTC, and what has no UTC time is a 400."""
    staff = django_user_model.objects.create_user("fuzzed-staff", is_staff=True, is_superuser=True)
    _token, plaintext = token_create(user=staff, name="t", scopes=["read"])

    response = APIClient().get("/api/v1/services", {"expires_before": value}, HTTP_AUTHORIZATION=f"Bearer {plaintext}")

    if value.startswith("0675"):
        assert response.status_code == 200
    else:
        assert response.status_code == 400
        assert response.json()["fields"]["expires_before"]
