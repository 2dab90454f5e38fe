import pytest

from billing.choices import SERVICE_TRANSITIONS, ServiceStatus, SuspendReason
from billing.models import Service, ServiceStatusChange
from billing.services import TransitionNotAllowed, service_status_change
from tests.factories import ServiceFactory, UserFactory

pytestmark = pytest.mark.django_db

ALLOWED = [(start, end) for start, ends in SERVICE_TRANSITIONS.items() for end in ends]
REFUSED = [(start, end) for start in ServiceStatus for end in ServiceStatus if end not in SERVICE_TRANSITIONS[start]]


def _service_in(status):
    service = ServiceFactory()
    Service.objects.filter(pk=service.pk).update(status=status)
    service.refresh_from_db()
    return service


@pytest.mark.parametrize(("start", "end"), ALLOWED)
def test_an_allowed_transition_changes_the_status_and_writes_who_when_why(start, end):
    service, staff = _service_in(start), UserFactory()

    service_status_change(service=service, to=end, by=staff, reason="checked by hand")

    service.refresh_from_db()
    assert service.status == end
    change = ServiceStatusChange.objects.get(service=service)
    assert (change.from_status, change.to_status, change.changed_by, change.reason) == (start, end, staff, "checked by hand")
    assert change.created_at is not None


@pytest.mark.parametrize(("start", "end"), REFUSED)
def test_a_transition_outside_the_table_is_refused_and_leaves_no_trace(start, end):
    service = _service_in(start)

    with pytest.raises(TransitionNotAllowed):
        service_status_change(service=service, to=end)

    service.refresh_from_db()
    assert service.status == start
    assert not ServiceStatusChange.objects.exists()


def test_the_table_refuses_the_obvious_mistakes():
    assert ("deleted", "active") in REFUSED
    assert ("ordered", "active") in REFUSED
    assert ("active", "active") in REFUSED
    assert SERVICE_TRANSITIONS[ServiceStatus.DELETED] == set()


def test_the_suspend_reason_lives_only_while_suspended():
    service = _service_in(ServiceStatus.ACTIVE)

    service_status_change(service=service, to=ServiceStatus.SUSPENDED, suspend_reason=SuspendReason.NONPAYMENT)
    assert Service.objects.get(pk=service.pk).suspend_reason == SuspendReason.NONPAYMENT
    assert service.suspend_reason == SuspendReason.NONPAYMENT

    service_status_change(service=service, to=ServiceStatus.ACTIVE, reason="paid")
    assert Service.objects.get(pk=service.pk).suspend_reason == ""
    assert list(service.status_changes.values_list("to_status", flat=True)) == ["suspended", "active"]
