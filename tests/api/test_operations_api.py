"""/api/v1/operations (staff retry and resolve; clients read their own) and /api/v1/ip-assignments."""

import pytest
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from billing.choices import PanelAction, ServiceStatus
from provisioning.choices import OperationStatus
from provisioning.models import Operation
from tests.api.test_services_api import bearer, client_user, utc
from tests.factories import IPAssignmentFactory, OperationFactory, ServiceFactory, StaffUserFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def ann():
    customer, user = client_user()
    return customer, bearer(user)


@pytest.fixture
def staff():
    return bearer(StaffUserFactory())


def ids(answer) -> list[int]:
    assert answer.status_code == 200, answer.content
    return [row["id"] for row in answer.json()["results"]]


def test_staff_list_every_operation_and_a_client_its_own(api, ann, staff):
    customer, auth = ann
    mine = OperationFactory(service=ServiceFactory(client=customer), status=OperationStatus.DONE)
    other = OperationFactory(status=OperationStatus.FAILED, secret="panel-Secret-1")

    assert ids(api.get("/api/v1/operations", **auth)) == [mine.pk]
    assert ids(api.get("/api/v1/operations", **staff)) == [other.pk, mine.pk]
    assert api.get(f"/api/v1/operations/{other.pk}", **auth).status_code == 404
    detail = api.get(f"/api/v1/operations/{other.pk}", **staff)
    assert detail.json()["action"] == "open"
    assert "panel-Secret-1" not in detail.content.decode()


def test_operations_filter_by_status_action_and_service(api, staff):
    failed = OperationFactory(status=OperationStatus.FAILED, action=PanelAction.SUSPEND)
    done = OperationFactory(status=OperationStatus.DONE)

    assert ids(api.get("/api/v1/operations?status=failed", **staff)) == [failed.pk]
    assert ids(api.get("/api/v1/operations?action=open", **staff)) == [done.pk]
    assert ids(api.get(f"/api/v1/operations?service={done.service_id}", **staff)) == [done.pk]
    assert api.get("/api/v1/operations?status=lost", **staff).status_code == 400


def test_staff_retry_a_failed_operation_which_is_queued_again(api, staff, tasks, django_capture_on_commit_callbacks):
    operation = OperationFactory(status=OperationStatus.FAILED, attempts=5, service=ServiceFactory(status=ServiceStatus.FAILED))

    with django_capture_on_commit_callbacks(execute=True):
        answer = api.post(f"/api/v1/operations/{operation.pk}/retry", **staff)

    assert answer.status_code == 202
    assert (answer.json()["status"], answer.json()["attempts"]) == ("queued", 0)
    operation.service.refresh_from_db()
    assert operation.service.status == ServiceStatus.PROCESSING
    assert len(tasks.pending()) == 1


def test_retrying_what_did_not_fail_says_so_and_changes_nothing(api, staff):
    operation = OperationFactory(status=OperationStatus.DONE)

    answer = api.post(f"/api/v1/operations/{operation.pk}/retry", **staff)

    assert answer.status_code == 400
    assert answer.json() == {"code": "not_failed", "message": "Only a failed operation can be retried.", "fields": {}}
    operation.refresh_from_db()
    assert operation.status == OperationStatus.DONE


def test_staff_mark_a_failed_operation_resolved_once(api, staff):
    operation = OperationFactory(status=OperationStatus.FAILED)

    resolved = api.post(f"/api/v1/operations/{operation.pk}/resolve", **staff)
    again = api.post(f"/api/v1/operations/{operation.pk}/resolve", **staff)

    assert resolved.status_code == 200
    assert resolved.json()["resolved_at"] is not None
    assert again.status_code == 400
    assert again.json()["message"] == "Only a failed, unresolved operation can be marked resolved."


def test_clients_and_staff_without_the_admins_permission_may_not_act_on_operations(api, ann):
    customer, auth = ann
    own = OperationFactory(service=ServiceFactory(client=customer), status=OperationStatus.FAILED)
    clerk = UserFactory(is_staff=True)

    for path in ("retry", "resolve"):
        assert api.post(f"/api/v1/operations/{own.pk}/{path}", **auth).status_code == 403
        assert api.post(f"/api/v1/operations/{own.pk}/{path}", **bearer(clerk)).status_code == 403
    clerk.user_permissions.add(Permission.objects.get(codename="change_operation"))
    assert api.post(f"/api/v1/operations/{own.pk}/resolve", **bearer(UserFactory(username=clerk.username))).status_code == 200

    own.refresh_from_db()
    assert own.resolved_by == clerk


def test_ip_assignments_are_the_clients_own_or_every_one_for_staff(api, ann, staff):
    customer, auth = ann
    mine = IPAssignmentFactory(service=ServiceFactory(client=customer), address="10.0.0.1")
    released = IPAssignmentFactory(service=mine.service, address="10.0.0.2", released_at=utc(2026, 1, 1))
    other = IPAssignmentFactory(address="10.0.0.3")

    assert ids(api.get("/api/v1/ip-assignments", **auth)) == [released.pk, mine.pk]
    assert ids(api.get("/api/v1/ip-assignments", **staff)) == [other.pk, released.pk, mine.pk]
    assert ids(api.get("/api/v1/ip-assignments?status=live", **auth)) == [mine.pk]
    assert ids(api.get("/api/v1/ip-assignments?status=released", **staff)) == [released.pk]
    assert ids(api.get("/api/v1/ip-assignments?address=10.0.0.3", **staff)) == [other.pk]
    assert ids(api.get(f"/api/v1/ip-assignments?service={other.service_id}", **auth)) == []
    assert api.get(f"/api/v1/ip-assignments/{other.pk}", **auth).status_code == 404
    assert api.get("/api/v1/ip-assignments?status=gone", **staff).status_code == 400
    for query, field in (("address=nonsense", "address"), ("service=1.5", "service"), ("service=99999999999999999999", "service")):
        answer = api.get(f"/api/v1/ip-assignments?{query}", **staff)
        assert (answer.status_code, list(answer.json()["fields"])) == (400, [field]), query
    row = api.get(f"/api/v1/ip-assignments/{released.pk}", **auth).json()
    assert (row["address"], row["status"], row["service"]) == ("10.0.0.2", "released", mine.service_id)
    assert api.post("/api/v1/ip-assignments", {}, format="json", **staff).status_code == 405


@pytest.mark.parametrize("who", ["staff", "client"])
@pytest.mark.parametrize("path", ["operations", "ip-assignments"])
def test_lists_read_200_rows_in_a_fixed_number_of_queries(api, django_assert_num_queries, who, path):
    customer, user = client_user()
    auth = bearer(StaffUserFactory() if who == "staff" else user)
    for _ in range(200):
        service = ServiceFactory(client=customer)
        OperationFactory(service=service, status=OperationStatus.DONE)
        IPAssignmentFactory(service=service)
    api.get("/api/v1/me", **auth)  # the token's last use is written once a minute: not in the count below

    # token; (the client's account); count; rows
    with django_assert_num_queries(3 if who == "staff" else 4):
        answer = api.get(f"/api/v1/{path}?page_size=200", **auth)

    assert len(answer.json()["results"]) == 200
    assert Operation.objects.count() == 200
