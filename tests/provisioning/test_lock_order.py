"""One lock order for the whole project (billing.locks): staff's Retry and a new request wait for each other
and the loser hears "busy", never a database error."""

from functools import partial

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from billing.choices import PanelAction, ServiceStatus
from billing.locks import lock_objects
from billing.models import Client, LedgerEntry, Service
from billing.services import service_action_request
from provisioning.choices import OperationStatus
from provisioning.models import FailedOperation, Operation
from provisioning.services import operation_retry
from tests.conftest import postgres_only, run_at_once
from tests.factories import OperationFactory, ServiceFactory


def failed_change_password():
    """An active service whose password change gave up: it waits in the staff queue for a Retry."""
    service = ServiceFactory(status=ServiceStatus.ACTIVE, panel_username="user1")
    return OperationFactory(service=service, action=PanelAction.CHANGE_PASSWORD, status=OperationStatus.FAILED)


def pending(service):
    return list(Operation.objects.filter(service=service, status__in=[OperationStatus.QUEUED, OperationStatus.RUNNING]))


@pytest.mark.django_db
def test_lock_objects_locks_in_the_written_order_whatever_order_it_is_given():
    operation = failed_change_password()

    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        operations, services = lock_objects(Operation.objects.filter(pk=operation.pk), Service.objects.filter(pk=operation.service_id))

    assert (operations, services) == ([operation], [operation.service])
    tables = [query["sql"].split(" FROM ")[1].split()[0].strip('"') for query in queries.captured_queries if " FROM " in query["sql"]]
    assert tables == ["billing_service", "provisioning_operation"]
    if connection.vendor == "postgresql":
        assert all("FOR UPDATE OF" in query["sql"] for query in queries.captured_queries if " FROM " in query["sql"])


@pytest.mark.django_db
def test_lock_objects_refuses_a_model_without_a_place_in_the_order():
    with pytest.raises(ValueError, match=r"billing\.LedgerEntry has no place"), transaction.atomic():
        lock_objects(Client.objects.all(), LedgerEntry.objects.all())


@pytest.mark.django_db
def test_a_retry_after_a_new_request_is_busy_and_changes_nothing(tasks):
    operation = failed_change_password()
    service_action_request(service=operation.service, action=PanelAction.SUSPEND)

    with pytest.raises(ValidationError) as refused:
        operation_retry(operation=operation)

    assert refused.value.code == "busy"
    operation.refresh_from_db()
    assert operation.status == OperationStatus.FAILED
    assert [op.action for op in pending(operation.service)] == [PanelAction.SUSPEND]
    assert list(FailedOperation.objects.all()) == [operation]


@pytest.mark.django_db
def test_a_new_request_after_a_retry_is_busy(tasks):
    operation = failed_change_password()
    operation_retry(operation=operation)

    with pytest.raises(ValidationError) as refused:
        service_action_request(service=operation.service, action=PanelAction.SUSPEND)

    assert refused.value.code == "busy"
    assert [op.pk for op in pending(operation.service)] == [operation.pk]


@postgres_only()
@pytest.mark.django_db(transaction=True)
def test_a_retry_racing_a_new_request_lets_one_through_and_tells_the_other_busy(tasks):
    for _ in range(5):
        operation = failed_change_password()
        service = operation.service
        work = [partial(operation_retry, operation=operation), partial(service_action_request, service=service, action=PanelAction.SUSPEND)]

        outcomes = run_at_once(2, lambda i, work=work: work[i]())

        assert not any(isinstance(outcome, IntegrityError) for outcome in outcomes), outcomes
        refused = [outcome for outcome in outcomes if outcome is not None]
        assert len(refused) == 1, outcomes
        assert isinstance(refused[0], ValidationError)
        assert refused[0].code == "busy"
        assert len(pending(service)) == 1
