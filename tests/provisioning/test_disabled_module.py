"""A disabled processing module: its tariffs are off sale and its operations wait, then run once it is enabled."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from billing.choices import BillingPeriod, PanelAction, ServiceStatus
from billing.models import Service
from billing.services import order_place, service_mark_paid
from provisioning.choices import OperationStatus
from provisioning.models import FailedOperation, Operation, OperationAttempt, ProcessingModule
from provisioning.services import module_enable, operations_recover
from tests.factories import ClientFactory, TariffPlanFactory, UserFactory

WAITING = "Waiting: the processing module {} is disabled."


def disable(module):
    module_enable(module=module, enabled=False)


@pytest.fixture
def waiting(module, make_service, panel, tasks):
    """A paid service whose open was queued and then found the module disabled."""
    service = make_service()
    service_mark_paid(service=service)
    disable(module)
    tasks.run_all()
    return Operation.objects.get(service=service)


def test_a_disabled_modules_tariffs_are_not_in_the_shop_window_and_their_order_page_is_gone(client, module, tariff):
    TariffPlanFactory(name="On another module")
    assert tariff.name in client.get(reverse("shop")).text
    disable(module)

    shop = client.get(reverse("shop"))

    assert shop.status_code == 200
    assert tariff.name not in shop.text
    assert "On another module" in shop.text
    assert client.get(reverse("order", args=[tariff.pk])).status_code == 404


@pytest.mark.parametrize(
    ("by_staff", "expected"),
    [(False, "This tariff cannot be ordered."), (True, "This tariff cannot be ordered now: its processing module {} is disabled.")],
)
def test_order_place_refuses_a_tariff_of_a_disabled_module_and_creates_nothing(module, tariff, by_staff, expected):
    customer = ClientFactory()
    disable(module)

    with pytest.raises(ValidationError) as refused:
        order_place(
            client=customer, user=UserFactory(), tariff=tariff, period=BillingPeriod.MONTH, domain="a.example.com", by_staff=by_staff
        )

    assert refused.value.messages == [expected.format(module.name)]
    assert not Service.objects.exists()


def test_an_operation_of_a_disabled_module_waits_without_an_attempt_or_a_panel_call(waiting, panel, tasks):
    assert (waiting.status, waiting.attempts) == (OperationStatus.QUEUED, 0)
    assert not OperationAttempt.objects.exists()
    assert panel.app.calls == []
    assert waiting.service.status == ServiceStatus.PROCESSING
    assert tasks.pending() == []


def test_the_staff_queue_and_the_operations_list_say_why_it_waits(admin_client, waiting, module):
    queue = admin_client.get(reverse("admin:provisioning_failedoperation_changelist"))
    operations = admin_client.get(reverse("admin:provisioning_operation_changelist"))

    assert list(queue.context["cl"].result_list) == [waiting]
    assert WAITING.format(module.name) in queue.text
    assert WAITING.format(module.name) in operations.text


def test_enabling_the_module_in_its_form_runs_what_waited(admin_client, waiting, module, panel, tasks):
    page = admin_client.get(reverse("admin:provisioning_processingmodule_change", args=[module.pk]))
    data = {**page.context["adminform"].form.initial, "password": "", "is_enabled": "on", "_save": "Save"}
    data = {key: "" if value is None else value for key, value in data.items() if key not in ("edition", "checked_at", "check_ok")}

    response = admin_client.post(reverse("admin:provisioning_processingmodule_change", args=[module.pk]), data, follow=True)

    assert "1 waiting operation runs again." in [str(message) for message in response.context["messages"]]
    tasks.run_all()
    waiting.refresh_from_db()
    assert (waiting.status, waiting.service.status) == (OperationStatus.DONE, ServiceStatus.ACTIVE)
    assert not FailedOperation.objects.exists()


def test_the_enable_action_runs_what_waited_and_disable_holds_new_work(admin_client, waiting, module, panel, tasks):
    changelist = reverse("admin:provisioning_processingmodule_changelist")

    response = admin_client.post(changelist, {"action": "enable", "_selected_action": [module.pk]}, follow=True)
    assert "1 module enabled." in [str(message) for message in response.context["messages"]]
    tasks.run_all()
    waiting.refresh_from_db()
    assert waiting.status == OperationStatus.DONE

    admin_client.post(changelist, {"action": "disable", "_selected_action": [module.pk]})
    module.refresh_from_db()
    assert module.is_enabled is False


def test_recovery_leaves_a_waiting_operation_alone_and_picks_it_up_once_the_module_is_enabled(waiting, module, tasks):
    Operation.objects.filter(pk=waiting.pk).update(next_attempt_at=timezone.now() - timedelta(hours=1))

    assert operations_recover(late_after=timedelta(minutes=5)) == (0, 0)
    ProcessingModule.objects.filter(pk=module.pk).update(is_enabled=True)  # e.g. from a shell: no task was queued
    assert operations_recover(late_after=timedelta(minutes=5)) == (0, 1)

    tasks.run_all()
    waiting.refresh_from_db()
    assert (waiting.status, waiting.action) == (OperationStatus.DONE, PanelAction.OPEN)


def test_enabling_a_module_that_is_enabled_changes_nothing_and_says_so(admin_client, module):
    changelist = reverse("admin:provisioning_processingmodule_changelist")

    response = admin_client.post(changelist, {"action": "enable", "_selected_action": [module.pk]}, follow=True)

    assert [str(message) for message in response.context["messages"]] == [f"{module}: The module is already enabled: nothing was changed."]
