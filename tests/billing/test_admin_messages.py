"""What staff read after an action: what really changed, what was already so, sentences instead of constraint names."""

from decimal import Decimal

import pytest
from django.apps import apps
from django.contrib import messages as levels
from django.core.exceptions import ValidationError
from django.db import models
from django.urls import reverse

from billing.choices import LedgerEntryKind, PanelAction, ServiceStatus, SuspendReason
from billing.models import LedgerEntry, Payment
from billing.payments import payment_confirm, payment_start
from billing.services import ledger_entry_add, service_action_request
from ipam_sync.models import IPAssignment
from provisioning.choices import OperationStatus
from provisioning.models import Operation
from tests.factories import ClientFactory, IPAssignmentFactory, OperationFactory, ServiceFactory, TariffPlanFactory

SERVICES = "admin:billing_service_changelist"
PAYMENTS = "admin:billing_payment_changelist"
STAFF_QUEUE = "admin:provisioning_failedoperation_changelist"


def post_action(client, changelist, action, *objects):
    response = client.post(reverse(changelist), {"action": action, "_selected_action": [obj.pk for obj in objects]}, follow=True)
    assert response.status_code == 200
    return response


def said(response):
    """Each message with its level, in the order staff read them."""
    return [(message.level, str(message)) for message in response.context["messages"]]


@pytest.fixture
def customer(db):
    customer = ClientFactory(name="Acme")
    ledger_entry_add(client=customer, kind=LedgerEntryKind.TOPUP, amount=Decimal("1000.00"), reference="bank transfer")
    return customer


@pytest.fixture
def tariff(db):
    return TariffPlanFactory(name="Business")


def service(customer, tariff, **fields):
    return ServiceFactory(client=customer, tariff=tariff, price=Decimal("100.00"), **fields)


# Bulk actions count what changed and say what was already so


def test_pay_from_balance_counts_only_the_service_it_paid_and_says_the_other_was_already_paid(admin_client, customer, tariff):
    unpaid = service(customer, tariff)
    paid = service(customer, tariff, status=ServiceStatus.ACTIVE, paid_at="2025-01-01T00:00Z")

    response = post_action(admin_client, SERVICES, "pay_from_balance", unpaid, paid)

    assert said(response) == [
        (levels.SUCCESS, "1 service paid."),
        (levels.INFO, f"{paid}: Service #{paid.pk} is already paid for: nothing was charged."),
    ]
    charges = LedgerEntry.objects.filter(kind=LedgerEntryKind.CHARGE)
    assert list(charges.values_list("amount", flat=True)) == [Decimal("-100.00")]


def test_pay_from_balance_of_only_paid_services_reports_no_success(admin_client, customer, tariff):
    paid = service(customer, tariff, status=ServiceStatus.ACTIVE, paid_at="2025-01-01T00:00Z")

    response = post_action(admin_client, SERVICES, "pay_from_balance", paid)

    assert said(response) == [(levels.INFO, f"{paid}: Service #{paid.pk} is already paid for: nothing was charged.")]
    assert not LedgerEntry.objects.filter(kind=LedgerEntryKind.CHARGE).exists()


def test_confirming_paid_and_pending_transfers_counts_the_one_it_credited(admin_client, customer):
    pending, _start = payment_start(client=customer, gateway_code="manual", amount="200.00")
    confirmed, _start = payment_start(client=customer, gateway_code="manual", amount="300.00")
    payment_confirm(payment=confirmed)

    response = post_action(admin_client, PAYMENTS, "confirm", pending, confirmed)

    assert said(response) == [
        (levels.SUCCESS, "1 payment confirmed."),
        (levels.INFO, f"{confirmed}: Payment {confirmed.reference} is already confirmed: nothing was credited again."),
    ]
    assert sorted(LedgerEntry.objects.filter(kind=LedgerEntryKind.TOPUP).values_list("amount", flat=True)) == [
        Decimal("200.00"),
        Decimal("300.00"),
        Decimal("1000.00"),
    ]


def test_bulk_suspend_counts_what_it_queued_and_says_why_the_others_changed_nothing(admin_client, customer, tariff):
    active = service(customer, tariff, status=ServiceStatus.ACTIVE, panel_username="a1")
    suspended = service(customer, tariff, status=ServiceStatus.SUSPENDED, suspend_reason=SuspendReason.STAFF, panel_username="a2")
    requested = service(customer, tariff, status=ServiceStatus.ACTIVE, panel_username="a3")
    service_action_request(service=requested, action=PanelAction.SUSPEND)
    unpaid = service(customer, tariff)

    response = post_action(admin_client, SERVICES, "request_suspend", active, suspended, requested, unpaid)

    # The changelist lists newest first: the messages follow that order.
    assert said(response) == [
        (levels.SUCCESS, "1 service will be suspended."),
        (levels.INFO, f"{requested}: “Suspend” is already on its way to the panel for service #{requested.pk}."),
        (levels.INFO, f"{suspended}: Service #{suspended.pk} is already “Suspended”: nothing to do."),
        (levels.ERROR, f"{unpaid}: Service #{unpaid.pk} is “Ordered”: “Suspend” is not possible now."),
    ]
    assert sorted(Operation.objects.values_list("service_id", "action")) == [
        (active.pk, PanelAction.SUSPEND),
        (requested.pk, PanelAction.SUSPEND),
    ]


# Constraint violations as sentences


def test_a_top_up_with_a_negative_amount_is_refused_once_next_to_the_amount_without_a_constraint_name(admin_client, customer):
    before = LedgerEntry.objects.count()

    response = admin_client.post(
        reverse("admin:billing_ledgerentry_add"), {"client": customer.pk, "kind": "topup", "amount": "-5", "reference": "x"}
    )

    assert response.status_code == 200
    form = response.context["adminform"].form
    assert dict(form.errors) == {"amount": ["The amount must be greater than zero."]}
    assert "Constraint" not in response.content.decode()
    assert LedgerEntry.objects.count() == before


def test_an_address_live_on_another_service_is_refused_with_a_sentence_next_to_the_address(admin_client, customer, tariff):
    taken = IPAssignmentFactory(address="133.31.223.7")
    other = service(customer, tariff)

    response = admin_client.post(
        reverse("admin:ipam_sync_ipassignment_add"),
        {"integration": taken.integration_id, "service": other.pk, "address": "133.31.223.7", "ip_type": "alias"},
    )

    assert response.status_code == 200
    form = response.context["adminform"].form
    assert dict(form.errors) == {"address": ["This address is already assigned to a service: release it there first."]}
    assert "ipassignment_one_live_service_per_address" not in response.content.decode()
    assert list(IPAssignment.objects.values_list("service_id", flat=True)) == [taken.service_id]


def test_a_released_address_may_be_assigned_again(admin_client, customer, tariff):
    released = IPAssignmentFactory(address="133.31.223.8", released_at="2025-01-01T00:00Z")
    other = service(customer, tariff)

    response = admin_client.post(
        reverse("admin:ipam_sync_ipassignment_add"),
        {"integration": released.integration_id, "service": other.pk, "address": "133.31.223.8", "ip_type": "alias", "_save": "Save"},
    )

    assert response.status_code == 302
    assert IPAssignment.objects.filter(address="133.31.223.8", released_at__isnull=True).get().service == other


def test_a_payment_of_nothing_reads_as_a_sentence(customer):
    payment = Payment(client=customer, gateway="manual", amount=Decimal("0"), currency="RUB", reference="PX")

    with pytest.raises(ValidationError) as refused:
        payment.validate_constraints()

    assert refused.value.messages == ["The amount must be greater than zero."]


def test_a_positive_charge_reads_as_a_sentence(customer):
    entry = LedgerEntry(client=customer, kind=LedgerEntryKind.CHARGE, amount=Decimal("5"), reference="x")

    with pytest.raises(ValidationError) as refused:
        entry.validate_constraints()

    assert refused.value.messages == ["A top-up or a refund must be positive, a charge negative, and an adjustment not zero."]


def project_constraints():
    for model in apps.get_models():
        if model._meta.app_label in ("billing", "provisioning", "ipam_sync") and not model._meta.proxy:
            for constraint in model._meta.constraints:
                yield model, constraint


def test_every_check_and_conditional_unique_constraint_has_a_sentence():
    # Django names such a constraint in its message ("Constraint “x” is violated."); a unique one on
    # fields alone already reads "... with this ... already exists.".
    named_only = [
        f"{model.__name__}.{constraint.name}"
        for model, constraint in project_constraints()
        if isinstance(constraint, models.CheckConstraint) or getattr(constraint, "condition", None) is not None
        if constraint.name not in getattr(model, "constraint_messages", {})
    ]

    assert named_only == []
    assert len(list(project_constraints())) > 10  # the walk reached the models


# Names, not codes


def test_the_payment_list_and_page_name_the_payment_method(admin_client, customer):
    payment, _start = payment_start(client=customer, gateway_code="manual", amount="200.00")

    listing = admin_client.get(reverse(PAYMENTS))
    page = admin_client.get(reverse("admin:billing_payment_change", args=[payment.pk]))

    assert listing.status_code == page.status_code == 200
    cells = listing.content.decode()
    assert '<td class="field-method">Bank transfer</td>' in cells
    assert '<td class="field-method">manual</td>' not in cells
    assert "Bank transfer" in page.content.decode()
    filter_choices = [choice["display"] for spec in listing.context["cl"].filter_specs for choice in spec.choices(listing.context["cl"])]
    assert {"Bank transfer", "Test payment (demo)"} <= {str(choice) for choice in filter_choices}


def test_the_payment_method_filter_keeps_only_that_method(admin_client, customer):
    transfer, _start = payment_start(client=customer, gateway_code="manual", amount="200.00")
    Payment.objects.create(client=customer, gateway="test", amount=Decimal("5.00"), currency="RUB", reference="PTEST1")

    response = admin_client.get(reverse(PAYMENTS), {"gateway": "manual"})

    assert list(response.context["cl"].result_list) == [transfer]


def test_a_payment_of_a_method_no_longer_configured_shows_its_code(admin_client, customer):
    Payment.objects.create(client=customer, gateway="oldcard", amount=Decimal("5.00"), currency="RUB", reference="POLD01")

    response = admin_client.get(reverse(PAYMENTS))

    assert '<td class="field-method">oldcard</td>' in response.content.decode()


def test_the_russian_payment_list_shows_the_method_by_name_not_by_code(admin_client, customer):
    payment_start(client=customer, gateway_code="manual", amount="200.00")

    response = admin_client.get("/ru" + reverse(PAYMENTS))

    assert response.status_code == 200
    assert '<td class="field-method">manual</td>' not in response.content.decode()


# The staff queue


def test_an_empty_staff_queue_says_so(admin_client, db):
    OperationFactory(status=OperationStatus.DONE)

    response = admin_client.get(reverse(STAFF_QUEUE))

    assert response.status_code == 200
    assert "Staff queue is empty: no failed operation waits for staff." in response.content.decode()
    assert "0 staff queue" not in " ".join(response.content.decode().split())


def test_a_staff_queue_with_a_failed_operation_does_not_say_it_is_empty(admin_client, db):
    failed = OperationFactory(status=OperationStatus.FAILED, last_error="panel down")

    response = admin_client.get(reverse(STAFF_QUEUE))

    assert list(response.context["cl"].result_list) == [failed]
    assert "Staff queue is empty" not in response.content.decode()


def test_a_staff_queue_search_that_finds_nothing_says_so_rather_than_empty(admin_client, db):
    OperationFactory(status=OperationStatus.FAILED, last_error="panel down")

    response = admin_client.get(reverse(STAFF_QUEUE), {"q": "no-such-thing"})

    assert "No failed operation matches the search or the filters." in response.content.decode()
    assert "Staff queue is empty" not in response.content.decode()

