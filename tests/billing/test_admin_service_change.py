"""The service's change page in the admin: what was ordered is read-only; resources change through a service function."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import translation

from billing.choices import BillingPeriod, PanelAction, ResourceKind, ServiceStatus
from billing.constants import QUANTITY_MAX
from billing.models import Service, ServiceResource, ServiceStatusChange
from billing.services import service_action_request, service_resources_change
from provisioning.models import Operation
from tests.factories import (
    ClientFactory,
    ServiceFactory,
    ServiceResourceFactory,
    TariffPlanFactory,
    TariffPriceFactory,
    TariffResourceFactory,
    UserFactory,
)

ORDERED_FIELDS = ["client", "tariff", "period", "domain", "price", "setup_fee", "ordered_by", "expires_at"]


@pytest.fixture
def tariff(db):
    """300.00 a month; databases: 10 included, up to 50, 20.00 each extra; disk: 1000 included, no maximum, 0.10 each."""
    tariff = TariffPlanFactory(name="Start", setup_fee=Decimal("50.00"), allow_dedicated_ip=True)
    TariffPriceFactory(tariff=tariff, period=BillingPeriod.QUARTER, price=Decimal("850.00"))
    TariffResourceFactory(tariff=tariff, kind=ResourceKind.DATABASES, included=10, unit_price=Decimal("20.00"), max_quantity=50)
    TariffResourceFactory(tariff=tariff, kind=ResourceKind.DISK, included=1000, unit_price=Decimal("0.10"), max_quantity=None)
    return tariff


def make_service(tariff, status, **fields):
    service = ServiceFactory(
        tariff=tariff,
        client=ClientFactory(currency=tariff.currency),
        status=status,
        domain="shop.example.com",
        price=Decimal("300.00"),
        setup_fee=Decimal("50.00"),
        **fields,
    )
    ServiceResourceFactory(service=service, kind=ResourceKind.DATABASES, quantity=10)
    ServiceResourceFactory(service=service, kind=ResourceKind.DISK, quantity=1000)
    return service


@pytest.fixture
def active(tariff):
    return make_service(tariff, ServiceStatus.ACTIVE, panel_username="user7", paid_at="2025-01-01T00:00Z")


@pytest.fixture
def ordered(tariff):
    return make_service(tariff, ServiceStatus.ORDERED)


def change_url(service):
    return reverse("admin:billing_service_change", args=[service.pk])


def change_form_data(client, service, **changes):
    """What the change page submits as rendered, with `changes` (field or `<kind>` resource quantity) applied."""
    response = client.get(change_url(service))
    assert response.status_code == 200
    data = {"_save": "Save"}
    forms = [response.context["adminform"].form]
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        forms += [formset.management_form, *formset.forms]
    for form in forms:
        for name in form.fields:
            value = form[name].value()
            data[form.add_prefix(name)] = "" if value is None else value
    for key, value in changes.items():
        if key in ResourceKind.values:
            (form,) = [form for form in response.context["inline_admin_formsets"][0].formset.forms if form.instance.kind == key]
            data[form.add_prefix("quantity")] = value
        else:
            data[key] = value
    return data


def save(client, service, **changes):
    return client.post(change_url(service), change_form_data(client, service, **changes), follow=True)


def messages_of(response):
    return [str(message) for message in response.context["messages"]]


def snapshot(service):
    """The service row, its resources, its audit rows and its operations, comparable."""
    return {
        "service": Service.objects.filter(pk=service.pk).values().get(),
        "resources": dict(ServiceResource.objects.filter(service=service).values_list("kind", "quantity")),
        "history": ServiceStatusChange.objects.filter(service=service).count(),
        "operations": list(Operation.objects.filter(service=service).values_list("action", "status")),
    }


# What was ordered is read-only


def test_after_creation_the_ordered_fields_are_read_only(admin_client, active):
    response = admin_client.get(change_url(active))

    assert response.status_code == 200
    assert [name for name in ORDERED_FIELDS if name in response.context["adminform"].form.fields] == []
    html = response.content.decode()
    assert "shop.example.com" in html


def test_a_forged_post_of_the_ordered_fields_changes_nothing(admin_client, active):
    before = snapshot(active)
    other_client, other_tariff = ClientFactory(), TariffPlanFactory()
    data = change_form_data(admin_client, active)
    data.update(
        client=other_client.pk,
        tariff=other_tariff.pk,
        period=BillingPeriod.YEAR,
        domain="evil.example.com&x=1\r\n<script>alert(1)</script>",
        price="0.01",
        setup_fee="0",
        ordered_by=UserFactory().pk,
        expires_at_0="2099-01-01",
        expires_at_1="00:00:00",
    )

    response = admin_client.post(change_url(active), data, follow=True)

    assert response.status_code == 200
    assert snapshot(active) == before


def test_the_add_page_still_takes_client_tariff_period_and_domain(admin_client, tariff):
    response = admin_client.get(reverse("admin:billing_service_add"))

    assert {"client", "tariff", "period", "domain"} <= set(response.context["adminform"].form.fields)


# Resources through service_resources_change


def test_more_databases_for_an_active_service_are_repriced_audited_and_sent_to_the_panel(admin_client, staff_user, active):
    response = save(admin_client, active, databases="15")

    assert messages_of(response)[0] == "Resources changed; the new limits will be sent to the panel."
    active.refresh_from_db()
    assert dict(active.resources.values_list("kind", "quantity")) == {ResourceKind.DATABASES: 15, ResourceKind.DISK: 1000}
    assert active.price == Decimal("400.00")  # 300.00 + 5 extra databases at 20.00 for one month
    assert active.setup_fee == Decimal("50.00")
    history = [(str(row.reason), row.from_status, row.to_status, row.changed_by) for row in active.status_changes.order_by("pk")]
    assert history == [
        ("Databases changed by staff: 10 → 15.", ServiceStatus.ACTIVE, ServiceStatus.ACTIVE, staff_user),
        ("Price per period: 300.00\xa0RUB → 400.00\xa0RUB.", ServiceStatus.ACTIVE, ServiceStatus.ACTIVE, staff_user),
    ]
    (operation,) = Operation.objects.filter(service=active)
    assert (operation.action, operation.requested_by) == (PanelAction.SET_LIMITS, staff_user)


def test_the_history_of_a_resource_change_reads_in_the_readers_number_format(admin_client, active):
    save(admin_client, active, databases="15", disk="12000")

    with translation.override("ru"):
        history = [str(row.reason) for row in active.status_changes.order_by("pk")]
    assert history == [
        "Ресурс «Базы данных» изменён сотрудником: 10 → 15.",  # noqa: RUF001 - Russian next to the Latin codes
        "Ресурс «Диск, MiB» изменён сотрудником: 1\xa0000 → 12\xa0000.",  # noqa: RUF001 - Russian next to the Latin codes
        "Цена за период: 300,00\xa0RUB → 1\xa0500,00\xa0RUB.",
    ]


def test_changing_an_unpaid_order_reprices_it_and_queues_nothing(admin_client, ordered):
    response = save(admin_client, ordered, databases="12", disk="1500")

    assert messages_of(response)[0] == "Resources changed; the order now costs 390.00\xa0RUB per period."
    ordered.refresh_from_db()
    assert ordered.price == Decimal("390.00")  # 300.00 + 2 * 20.00 + 500 * 0.10
    assert ordered.first_payment == Decimal("440.00")
    assert ordered.status == ServiceStatus.ORDERED
    assert not Operation.objects.filter(service=ordered).exists()
    assert ordered.status_changes.count() == 3


def test_the_price_keeps_what_the_order_was_sold_at_and_changes_by_the_resources_only(tariff, ordered):
    tariff.prices.filter(period=BillingPeriod.MONTH).update(price=Decimal("999.00"))
    Service.objects.filter(pk=ordered.pk).update(price=Decimal("250.00"))  # e.g. sold at an earlier price

    service = service_resources_change(service=ordered, quantities={ResourceKind.DATABASES: 11})

    assert service.price == Decimal("270.00")


def test_fewer_resources_lower_the_price(active):
    Service.objects.filter(pk=active.pk).update(price=Decimal("400.00"))
    ServiceResource.objects.filter(service=active, kind=ResourceKind.DATABASES).update(quantity=15)

    service = service_resources_change(service=active, quantities={ResourceKind.DATABASES: 12})

    assert service.price == Decimal("340.00")


@pytest.mark.parametrize(
    ("kind", "quantity", "message"),
    [
        (ResourceKind.DATABASES, "51", "Databases: at most 50."),
        (ResourceKind.DATABASES, "9", "Databases: at least 10 (included in the price)."),
        (ResourceKind.DISK, str(QUANTITY_MAX + 1), f"at most {QUANTITY_MAX}"),
        (ResourceKind.DISK, str(2**63), "less than or equal to"),
        (ResourceKind.DISK, "1e3", "Enter a whole number."),
    ],
)
def test_an_invalid_quantity_shows_the_error_on_its_row_and_changes_nothing(admin_client, active, kind, quantity, message):
    before = snapshot(active)

    response = save(admin_client, active, **{kind: quantity})

    assert response.status_code == 200
    (form,) = [form for form in response.context["inline_admin_formsets"][0].formset.forms if form.instance.kind == kind]
    assert any(message in error for error in form.errors["quantity"])
    assert snapshot(active) == before


@pytest.mark.parametrize(
    ("status", "shown"), [(ServiceStatus.PROCESSING, "Processing"), (ServiceStatus.FAILED, "Failed"), (ServiceStatus.DELETED, "Deleted")]
)
def test_resources_of_a_service_without_a_live_account_cannot_be_changed(admin_client, tariff, status, shown):
    service = make_service(tariff, status)
    before = snapshot(service)

    response = save(admin_client, service, databases="12")

    assert response.status_code == 200
    errors = response.context["inline_admin_formsets"][0].formset.non_form_errors()
    assert [f"Service #{service.pk} is “{shown}”: its resources cannot be changed now."] == list(errors)
    assert snapshot(service) == before


def test_dedicated_ips_of_a_live_account_cannot_be_changed_here(active):
    ServiceResourceFactory(service=active, kind=ResourceKind.DEDICATED_IPV4, quantity=1)
    TariffResourceFactory(tariff=active.tariff, kind=ResourceKind.DEDICATED_IPV4, included=0, unit_price=Decimal("100.00"))
    before = snapshot(active)

    with pytest.raises(ValidationError) as refused:
        service_resources_change(service=active, quantities={ResourceKind.DEDICATED_IPV4: 2})

    assert "cannot be changed here" in refused.value.message_dict[ResourceKind.DEDICATED_IPV4][0]
    assert snapshot(active) == before


def test_a_change_while_another_panel_action_is_pending_is_refused_and_changes_nothing(admin_client, active):
    service_action_request(service=active, action=PanelAction.SYNC)
    before = snapshot(active)

    response = save(admin_client, active, databases="15")

    errors = response.context["inline_admin_formsets"][0].formset.non_form_errors()
    waiting = "is waiting for “Read state from the panel” in the panel: change its resources when that is done."
    assert list(errors) == [f"Service #{active.pk} {waiting}"]
    assert snapshot(active) == before


@pytest.mark.parametrize(
    ("quantities", "key"),
    [
        ({"reboots": 1}, "reboots"),
        ({ResourceKind.DATABASES: "15"}, ResourceKind.DATABASES),
        ({ResourceKind.DATABASES: 1.5}, ResourceKind.DATABASES),
    ],
)
def test_the_service_function_refuses_what_an_order_would_refuse(active, quantities, key):
    before = snapshot(active)

    with pytest.raises(ValidationError) as refused:
        service_resources_change(service=active, quantities=quantities)

    assert key in refused.value.message_dict
    assert snapshot(active) == before


def test_saving_without_changes_changes_nothing(admin_client, active):
    before = snapshot(active)

    response = save(admin_client, active)

    assert response.status_code == 200
    assert snapshot(active) == before
