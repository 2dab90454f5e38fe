"""A paid service becomes an ISPmanager account, exactly once, whatever the panel does."""

from datetime import timedelta

import pytest
from django.core import mail
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from billing.choices import ProductType, ResourceKind, ServiceStatus
from billing.models import Service
from billing.services import service_mark_paid
from provisioning.choices import AttemptOutcome, OperationStatus
from provisioning.models import FailedOperation, Operation
from provisioning.services import operation_retry, operation_run
from tests.conftest import postgres_only, run_at_once
from tests.factories import TariffPlanFactory, UserFactory


def pay(service, by=None):
    service_mark_paid(service=service, by=by)
    service.refresh_from_db()
    return Operation.objects.get(service=service)


def test_the_seeds_example_gives_10_databases_and_keeps_the_templates_25_domains(make_service, panel, tasks):
    service = make_service()

    pay(service)
    tasks.run_all()

    service.refresh_from_db()
    assert service.status == ServiceStatus.ACTIVE
    user = panel.app.users[service.panel_username]
    assert (user["limits"]["limit_db"], user["limits"]["limit_webdomains"]) == ("10", "25")
    assert user["preset"] == "Site hosting"
    assert user["password"] == service.panel_password
    assert len(service.panel_password) >= 16
    assert list(service.status_changes.values_list("to_status", flat=True)) == ["processing", "active"]
    (email,) = mail.outbox
    assert email.to == [service.client.email]
    assert service.panel_username in email.body
    assert service.tariff.processing_module.url in email.body
    assert service.panel_password not in email.body


def test_username_template_user_id_gives_user117_for_service_117(make_service, panel, tasks):
    service = make_service(id=117)

    pay(service)
    tasks.run_all()

    service.refresh_from_db()
    assert service.panel_username == "user117"
    assert "user117" in panel.app.users


def test_a_login_taken_by_someone_else_gets_a_numeric_suffix(make_service, panel, tasks):
    panel.app.users["user117"] = {
        "name": "user117", "password": "x", "fullname": "A manual account", "preset": "", "owner": "root",
        "active": True, "limits": {}, "domain": "",
    }  # fmt: skip
    service = make_service(id=117)

    pay(service)
    tasks.run_all()

    service.refresh_from_db()
    assert service.panel_username == "user1171"
    assert panel.app.users["user117"]["fullname"] == "A manual account"


def test_a_template_missing_in_the_panel_is_created_without_limits_then_used(module, make_service, panel, tasks):
    tariff = TariffPlanFactory(processing_module=module, product_type=ProductType.VHOST, account_template="Brand new plan")
    service = make_service(tariff=tariff)

    pay(service)
    tasks.run_all()

    service.refresh_from_db()
    assert service.status == ServiceStatus.ACTIVE
    assert panel.app.presets["Brand new plan"] == {}
    assert panel.app.users[service.panel_username]["preset"] == "Brand new plan"


def test_while_the_panel_is_down_the_service_stays_processing_and_opens_once_it_is_back(make_service, panel, tasks):
    service = make_service()
    panel.app.faults.down = True

    operation = pay(service)
    tasks.run_next()
    tasks.run_next()

    operation.refresh_from_db()
    service.refresh_from_db()
    assert (operation.status, operation.attempts, service.status) == (OperationStatus.QUEUED, 2, ServiceStatus.PROCESSING)
    assert "cannot connect" in operation.last_error
    assert panel.app.users == {}

    panel.app.faults.down = False
    tasks.run_all()

    service.refresh_from_db()
    operation.refresh_from_db()
    assert (operation.status, operation.attempts, service.status) == (OperationStatus.DONE, 3, ServiceStatus.ACTIVE)
    assert list(panel.app.users) == [service.panel_username]


def test_retries_wait_longer_each_time(make_service, panel, tasks, settings):
    settings.PROVISIONING_RETRY_SECONDS = 30
    panel.app.faults.down = True
    operation = pay(make_service())
    waits = []

    for _ in range(3):
        tasks.run_next()
        operation.refresh_from_db()
        (retry,) = tasks.pending()
        # Whole seconds, rounded up: a queue that keeps whole seconds never starts the retry early.
        assert operation.next_attempt_at <= retry.task.run_after < operation.next_attempt_at + timedelta(seconds=1)
        waits.append(round((operation.next_attempt_at - operation.updated_at).total_seconds()))

    assert waits == [30, 60, 120]


def test_a_reply_lost_after_the_panel_created_the_account_still_leaves_exactly_one_account(make_service, panel, tasks):
    service = make_service()
    panel.app.faults.drop_reply_next(func="user.add.finish")

    operation = pay(service)
    tasks.run_all()

    service.refresh_from_db()
    operation.refresh_from_db()
    assert operation.attempts == 2
    assert service.status == ServiceStatus.ACTIVE
    assert list(panel.app.users) == [service.panel_username]
    user = panel.app.users[service.panel_username]
    assert user["limits"]["limit_db"] == "10"
    assert user["password"] == service.panel_password


def test_a_lost_reply_on_template_creation_does_not_stop_the_open(module, make_service, panel, tasks):
    tariff = TariffPlanFactory(processing_module=module, product_type=ProductType.VHOST, account_template="Fresh")
    panel.app.faults.drop_reply_next(func="preset.edit")
    service = make_service(tariff=tariff)

    pay(service)
    tasks.run_all()

    service.refresh_from_db()
    assert service.status == ServiceStatus.ACTIVE
    assert list(panel.app.presets) == ["Site hosting", "Fresh"]


def test_a_wrong_password_fails_at_once_into_the_staff_queue_and_retry_after_the_fix_opens(module, make_service, panel, tasks):
    staff = UserFactory(email="support@example.com")
    module.department = staff.groups.create(name="Hosting support")
    module.password = "not-the-password"
    module.save()
    service = make_service()

    operation = pay(service)
    tasks.run_all()

    operation.refresh_from_db()
    service.refresh_from_db()
    assert (operation.status, operation.attempts) == (OperationStatus.FAILED, 1)
    assert "wrong username or password" in operation.last_error
    assert service.status == ServiceStatus.FAILED
    assert list(FailedOperation.objects.all()) == [operation]
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["support@example.com"]
    assert "wrong username or password" in mail.outbox[0].body

    module.password = "secret"
    module.save()
    operation_retry(operation=operation, by=staff)
    tasks.run_all()

    operation.refresh_from_db()
    service.refresh_from_db()
    assert (operation.status, service.status) == (OperationStatus.DONE, ServiceStatus.ACTIVE)
    assert not FailedOperation.objects.exists()
    assert list(panel.app.users) == [service.panel_username]


def test_a_panel_that_stays_down_ends_in_the_staff_queue_after_the_last_attempt(make_service, panel, tasks, settings):
    settings.PROVISIONING_MAX_ATTEMPTS = 3
    panel.app.faults.down = True
    operation = pay(make_service())

    tasks.run_all()

    operation.refresh_from_db()
    assert (operation.status, operation.attempts) == (OperationStatus.FAILED, 3)
    assert Service.objects.get().status == ServiceStatus.FAILED


def test_an_operation_runs_once_even_when_its_task_is_delivered_twice(make_service, panel, tasks):
    service = make_service()
    pay(service)
    duplicate = tasks.pending()[0]

    tasks.run_all()
    duplicate.task.call(*duplicate.args, **duplicate.kwargs)

    assert [func for func, _ in panel.app.calls].count("user.add.finish") == 1
    assert Operation.objects.get().attempts == 1


@postgres_only()
def test_two_workers_never_run_one_operation_twice(make_service, panel, tasks):
    operation = pay(make_service())
    panel.app.faults.delay = 0.3

    outcomes = run_at_once(2, lambda i: operation_run(operation_id=operation.pk))

    assert outcomes == [None, None]
    assert [func for func, _ in panel.app.calls].count("user.add.finish") == 1
    operation.refresh_from_db()
    assert (operation.status, operation.attempts) == (OperationStatus.DONE, 1)
    assert list(operation.attempt_log.values_list("number", "outcome")) == [(1, AttemptOutcome.SUCCEEDED)]


def test_the_open_operation_is_written_with_the_payment_or_not_at_all(make_service, tasks):
    service = make_service()

    with pytest.raises(RuntimeError), transaction.atomic():
        service_mark_paid(service=service)
        raise RuntimeError("the payment's transaction fails")

    service.refresh_from_db()
    assert (service.status, service.paid_at) == (ServiceStatus.ORDERED, None)
    assert not Operation.objects.exists()
    assert tasks.pending() == []


def test_paying_twice_is_refused_and_queues_nothing_more(make_service, tasks):
    service = make_service()
    pay(service)

    with pytest.raises(Exception, match="already paid"):
        service_mark_paid(service=service)
    assert Operation.objects.count() == 1


def test_the_service_gets_the_tariffs_included_resources_when_paid(make_service, tariff):
    tariff.resources.create(kind=ResourceKind.SHELL, included=0)
    service = make_service()

    pay(service)

    assert dict(service.resources.values_list("kind", "quantity")) == {ResourceKind.DATABASES: 10, ResourceKind.SHELL: 0}


def test_an_operation_left_running_by_a_worker_that_recorded_no_attempt_is_run_again_and_opens_once(make_service, panel, tasks):
    # A worker of the version before attempts were recorded died mid-open (see test_attempts.py for leases).
    service = make_service()
    operation = pay(service)
    tasks.backend.clear()  # the task was lost with the worker
    Operation.objects.filter(pk=operation.pk).update(
        status=OperationStatus.RUNNING, attempts=1, started_at=timezone.now() - timedelta(hours=1)
    )

    call_command("recover_operations")
    tasks.run_all()

    service.refresh_from_db()
    assert service.status == ServiceStatus.ACTIVE
    assert list(panel.app.users) == [service.panel_username]


def test_a_queued_operation_whose_task_was_lost_is_enqueued_again(make_service, panel, tasks):
    operation = pay(make_service())
    tasks.backend.clear()
    Operation.objects.filter(pk=operation.pk).update(next_attempt_at=timezone.now() - timedelta(minutes=30))
    fresh = pay(make_service())

    call_command("recover_operations")

    assert [result.args for result in tasks.pending()] == [[fresh.pk], [operation.pk]]
