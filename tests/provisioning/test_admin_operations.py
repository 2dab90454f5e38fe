"""Panel operations as staff drive them in the admin: service actions, the resources inline and the staff queue."""

from html.parser import HTMLParser

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from billing.choices import PanelAction, ServiceStatus
from billing.services import service_action_request, service_mark_paid
from provisioning.choices import OperationStatus
from provisioning.models import FailedOperation, Operation
from provisioning.services import operation_request
from tests.factories import ProcessingModuleFactory, ServiceFactory, TariffPlanFactory

SERVICES = "admin:billing_service_changelist"
OPERATIONS = "admin:provisioning_operation_changelist"
STAFF_QUEUE = "admin:provisioning_failedoperation_changelist"


def post_action(client, changelist, action, *objects):
    response = client.post(reverse(changelist), {"action": action, "_selected_action": [obj.pk for obj in objects]}, follow=True)
    assert response.status_code == 200
    return response


def messages_of(response):
    return [str(message) for message in response.context["messages"]]


def listed(client, changelist, query=""):
    response = client.get(reverse(changelist) + query)
    assert response.status_code == 200
    return list(response.context["cl"].result_list)


class FormFields(HTMLParser):
    """What a browser submits for one <form>: inputs, checked boxes, selected options and textareas."""

    def __init__(self, form_id):
        super().__init__()
        self.form_id, self.inside, self.select, self.textarea, self.data = form_id, False, None, None, {}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.inside = attrs.get("id") == self.form_id
        name = attrs.get("name")
        if not self.inside:
            return
        if tag == "input" and name and attrs.get("type") not in ("submit", "button", "file"):
            if attrs.get("type") not in ("checkbox", "radio"):
                self.data[name] = attrs.get("value", "")
            elif "checked" in attrs:
                self.data[name] = attrs.get("value", "on")
        elif tag == "select" and name:
            self.select = name
        elif tag == "option" and self.select and "selected" in attrs:
            self.data[self.select] = attrs.get("value", "")
        elif tag == "textarea" and name:
            self.textarea, self.data[name] = name, ""

    def handle_data(self, data):
        if self.textarea:
            self.data[self.textarea] += data

    def handle_endtag(self, tag):
        if tag == "form":
            self.inside = False
        elif tag == "select":
            self.select = None
        elif tag == "textarea":
            self.textarea = None


def rendered_form(response, form_id):
    parser = FormFields(form_id)
    parser.feed(response.content.decode())
    return parser.data


@pytest.fixture
def active_service(make_service, tasks):
    service = make_service()
    service_mark_paid(service=service)
    tasks.run_all()
    service.refresh_from_db()
    assert service.status == ServiceStatus.ACTIVE
    return service


@pytest.fixture
def fail_to_open(admin_client, module, make_service, tasks):
    """Pay services in the admin while the module has a wrong password: each open ends in the staff queue."""

    def fail(count=1):
        module.password = "wrong"
        module.save()
        services = [make_service() for _ in range(count)]
        post_action(admin_client, SERVICES, "mark_paid", *services)
        tasks.run_all()
        operations = list(Operation.objects.filter(service__in=services).order_by("pk"))
        assert [(op.action, op.status) for op in operations] == [(PanelAction.OPEN, OperationStatus.FAILED)] * count
        return operations

    return fail


# Service admin: pay


def test_mark_paid_queues_the_open_and_the_account_exists_only_after_the_task_ran(admin_client, staff_user, make_service, panel, tasks):
    service = make_service()

    response = post_action(admin_client, SERVICES, "mark_paid", service)

    assert messages_of(response) == ["1 service paid."]
    operation = Operation.objects.get(service=service)
    assert (operation.action, operation.status, operation.requested_by) == (PanelAction.OPEN, OperationStatus.QUEUED, staff_user)
    service.refresh_from_db()
    assert service.status == ServiceStatus.PROCESSING
    assert panel.app.users == {}

    tasks.run_all()

    service.refresh_from_db()
    assert service.status == ServiceStatus.ACTIVE
    assert service.panel_username
    assert list(panel.app.users) == [service.panel_username]


def test_mark_paid_on_a_paid_service_is_refused_with_a_message_and_queues_nothing(admin_client, active_service, tasks):
    response = post_action(admin_client, SERVICES, "mark_paid", active_service)

    assert messages_of(response) == [f"{active_service}: Service #{active_service.pk} is already paid for: nothing was charged."]
    assert Operation.objects.filter(service=active_service).count() == 1
    assert tasks.pending() == []


# Service admin: panel actions


def suspend_first(service, panel, tasks):
    service_action_request(service=service, action=PanelAction.SUSPEND)
    tasks.run_all()


def suspend_in_the_panel_only(service, panel, tasks):
    panel.app.users[service.panel_username]["active"] = False


PANEL_ACTIONS = [
    pytest.param(
        "request_suspend", PanelAction.SUSPEND, None, ServiceStatus.SUSPENDED,
        lambda before, after, service: after["active"] is False, id="suspend",
    ),
    pytest.param(
        "request_resume", PanelAction.RESUME, suspend_first, ServiceStatus.ACTIVE,
        lambda before, after, service: after["active"] is True, id="resume",
    ),
    pytest.param(
        "request_close", PanelAction.CLOSE, None, ServiceStatus.DELETED,
        lambda before, after, service: after is None, id="close",
    ),
    pytest.param(
        "request_change_password", PanelAction.CHANGE_PASSWORD, None, ServiceStatus.ACTIVE,
        lambda before, after, service: after["password"] == service.panel_password != before["password"], id="change-password",
    ),
    pytest.param(
        "request_sync", PanelAction.SYNC, suspend_in_the_panel_only, ServiceStatus.SUSPENDED,
        lambda before, after, service: after["active"] is False, id="sync-finds-it-suspended",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("admin_action", "panel_action", "prepare", "status_after", "account_is_right"), PANEL_ACTIONS)
def test_a_panel_action_queues_one_operation_and_the_service_follows_only_once_the_panel_did_it(
    admin_client, active_service, panel, tasks, admin_action, panel_action, prepare, status_after, account_is_right
):
    if prepare:
        prepare(active_service, panel, tasks)
    active_service.refresh_from_db()
    status_before, earlier = active_service.status, set(Operation.objects.values_list("pk", flat=True))
    account_before = dict(panel.app.users[active_service.panel_username])

    response = post_action(admin_client, SERVICES, admin_action, active_service)

    assert [message.level_tag for message in response.context["messages"]] == ["success"]
    (operation,) = Operation.objects.exclude(pk__in=earlier)
    assert (operation.service, operation.action, operation.status) == (active_service, panel_action, OperationStatus.QUEUED)
    assert len(tasks.pending()) == 1
    active_service.refresh_from_db()
    assert active_service.status == status_before
    assert panel.app.users[active_service.panel_username] == account_before

    tasks.run_all()

    operation.refresh_from_db()
    active_service.refresh_from_db()
    assert operation.status == OperationStatus.DONE
    assert active_service.status == status_after
    assert account_is_right(account_before, panel.app.users.get(active_service.panel_username), active_service)


def test_bulk_suspend_of_two_services_queues_two_operations(admin_client, make_service, panel, tasks):
    services = [make_service(), make_service()]
    for service in services:
        service_mark_paid(service=service)
    tasks.run_all()

    response = post_action(admin_client, SERVICES, "request_suspend", *services)

    assert messages_of(response) == ["2 services will be suspended."]
    suspends = Operation.objects.filter(action=PanelAction.SUSPEND, status=OperationStatus.QUEUED)
    assert sorted(suspends.values_list("service_id", flat=True)) == sorted(service.pk for service in services)

    tasks.run_all()

    for service in services:
        service.refresh_from_db()
        assert service.status == ServiceStatus.SUSPENDED
        assert panel.app.users[service.panel_username]["active"] is False


def test_resuming_an_active_service_names_it_says_there_is_nothing_to_do_and_queues_nothing(admin_client, active_service, tasks):
    earlier = Operation.objects.count()

    response = post_action(admin_client, SERVICES, "request_resume", active_service)

    assert messages_of(response) == [f"{active_service}: Service #{active_service.pk} is already “Active”: nothing to do."]
    assert Operation.objects.count() == earlier
    assert tasks.pending() == []


# Service admin: resources inline


def service_change_form(client, service):
    response = client.get(reverse("admin:billing_service_change", args=[service.pk]))
    assert response.status_code == 200
    content = response.content.decode()
    for name in ("resources-TOTAL_FORMS", "resources-INITIAL_FORMS", "resources-0-id", "resources-0-quantity"):
        assert f'name="{name}"' in content
    data = rendered_form(response, "service_form")
    data["_save"] = "Save"
    return data


def save_service(client, service, data):
    response = client.post(reverse("admin:billing_service_change", args=[service.pk]), data, follow=True)
    assert response.status_code == 200
    assert "adminform" not in response.context, response.context["adminform"].form.errors
    return response


def test_a_changed_resource_quantity_queues_set_limits_and_reaches_the_panel(admin_client, active_service, panel, tasks):
    data = service_change_form(admin_client, active_service)
    assert data["resources-0-quantity"] == "10"
    data["resources-0-quantity"] = "20"

    response = save_service(admin_client, active_service, data)

    assert "Resources changed; the new limits will be sent to the panel." in messages_of(response)
    operation = Operation.objects.get(action=PanelAction.SET_LIMITS)
    assert operation.status == OperationStatus.QUEUED
    assert panel.app.users[active_service.panel_username]["limits"]["limit_db"] == "10"

    tasks.run_all()

    operation.refresh_from_db()
    assert operation.status == OperationStatus.DONE
    assert panel.app.users[active_service.panel_username]["limits"]["limit_db"] == "20"


def test_saving_the_service_without_changing_resources_queues_nothing(admin_client, active_service, tasks):
    data = service_change_form(admin_client, active_service)

    response = save_service(admin_client, active_service, data)

    assert "The new resources will be sent to the panel." not in messages_of(response)
    assert list(Operation.objects.values_list("action", flat=True)) == [PanelAction.OPEN]
    assert tasks.pending() == []


# Staff queue


def test_the_staff_queue_lists_a_failed_open_with_its_error_and_not_done_operations(admin_client, fail_to_open, active_service):
    done = Operation.objects.get(service=active_service)
    assert done.status == OperationStatus.DONE
    (failed,) = fail_to_open()

    response = admin_client.get(reverse(STAFF_QUEUE))

    assert [op.pk for op in response.context["cl"].result_list] == [failed.pk]
    assert "wrong username or password" in response.content.decode()


def test_the_staff_queue_filters_by_action_and_by_module(admin_client, fail_to_open, module):
    (failed_open,) = fail_to_open()
    other_module = ProcessingModuleFactory(name="Other panel")
    other_service = ServiceFactory(tariff=TariffPlanFactory(processing_module=other_module), status=ServiceStatus.ACTIVE)
    failed_suspend = Operation.objects.create(service=other_service, action=PanelAction.SUSPEND, status=OperationStatus.FAILED)

    assert listed(admin_client, STAFF_QUEUE) == [failed_suspend, failed_open]
    assert listed(admin_client, STAFF_QUEUE, "?action__exact=open") == [failed_open]
    assert listed(admin_client, STAFF_QUEUE, "?action__exact=suspend") == [failed_suspend]
    assert listed(admin_client, STAFF_QUEUE, f"?service__tariff__processing_module__id__exact={module.pk}") == [failed_open]
    assert listed(admin_client, STAFF_QUEUE, f"?service__tariff__processing_module__id__exact={other_module.pk}") == [failed_suspend]


def test_retry_after_fixing_the_password_opens_the_account_and_empties_the_queue(admin_client, fail_to_open, module, panel, tasks):
    (failed,) = fail_to_open()
    assert failed.service.status == ServiceStatus.FAILED
    module.password = "secret"
    module.save()

    response = post_action(admin_client, STAFF_QUEUE, "retry", failed)

    assert messages_of(response) == ["1 operation queued again."]
    failed.refresh_from_db()
    assert (failed.status, failed.attempts) == (OperationStatus.QUEUED, 0)

    tasks.run_all()

    failed.refresh_from_db()
    failed.service.refresh_from_db()
    assert (failed.status, failed.service.status) == (OperationStatus.DONE, ServiceStatus.ACTIVE)
    assert list(panel.app.users) == [failed.service.panel_username]
    assert listed(admin_client, STAFF_QUEUE) == []


def test_bulk_mark_resolved_empties_the_queue_but_keeps_the_operations_with_resolved_at(admin_client, staff_user, fail_to_open):
    failed = fail_to_open(2)

    response = post_action(admin_client, STAFF_QUEUE, "mark_resolved", *failed)

    assert messages_of(response) == ["2 operations marked resolved."]
    assert listed(admin_client, STAFF_QUEUE) == []
    assert not FailedOperation.objects.exists()
    kept = listed(admin_client, OPERATIONS)
    assert sorted(op.pk for op in kept) == [op.pk for op in failed]
    assert all(op.resolved_at and op.resolved_by == staff_user and op.status == OperationStatus.FAILED for op in kept)


def test_retry_of_a_done_operation_is_refused_with_a_message(admin_client, active_service, tasks):
    done = Operation.objects.get(service=active_service)

    response = post_action(admin_client, OPERATIONS, "retry", done)

    assert messages_of(response) == [f"{done}: Only a failed operation can be retried."]
    done.refresh_from_db()
    assert done.status == OperationStatus.DONE
    assert tasks.pending() == []


# Operation and service pages


def test_the_operation_page_shows_the_last_error_and_never_the_planned_password(admin_client):
    operation = operation_request(service=ServiceFactory(status=ServiceStatus.PROCESSING), action=PanelAction.OPEN)
    Operation.objects.filter(pk=operation.pk).update(status=OperationStatus.FAILED, last_error="wrong username or password")
    operation.refresh_from_db()
    assert len(operation.secret) >= 16

    pages = [
        admin_client.get(reverse("admin:provisioning_operation_change", args=[operation.pk])),
        admin_client.get(reverse("admin:provisioning_failedoperation_change", args=[operation.pk])),
        admin_client.get(reverse(OPERATIONS)),
        admin_client.get(reverse(STAFF_QUEUE)),
    ]

    for page in pages:
        assert page.status_code == 200
        assert "wrong username or password" in page.content.decode()
        assert operation.secret not in page.content.decode()


def test_the_service_page_links_to_the_operations_of_that_service_only(admin_client):
    service, other = ServiceFactory(status=ServiceStatus.ACTIVE), ServiceFactory(status=ServiceStatus.ACTIVE)
    ours = Operation.objects.create(service=service, action=PanelAction.SYNC, status=OperationStatus.DONE)
    Operation.objects.create(service=other, action=PanelAction.SYNC, status=OperationStatus.DONE)
    query = f"?service__id__exact={service.pk}"

    response = admin_client.get(reverse("admin:billing_service_change", args=[service.pk]))

    assert f'href="{reverse(OPERATIONS)}{query}"' in response.content.decode()
    assert listed(admin_client, OPERATIONS, query) == [ours]


# Query counts


def add_failed_operations(count, staff_user):
    for _ in range(count):
        service = ServiceFactory(status=ServiceStatus.ACTIVE)
        Operation.objects.create(
            service=service, action=PanelAction.SUSPEND, status=OperationStatus.FAILED, requested_by=staff_user, last_error="panel said no"
        )


def page_queries(client, url, rows):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == rows
    return len(queries)


@pytest.mark.parametrize("changelist", [OPERATIONS, STAFF_QUEUE], ids=["operations", "staff-queue"])
def test_operation_changelists_run_as_many_queries_for_40_rows_as_for_5(
    admin_client, staff_user, django_assert_max_num_queries, changelist
):
    url = reverse(changelist)
    add_failed_operations(5, staff_user)
    admin_client.get(url)

    with_5 = page_queries(admin_client, url, 5)
    add_failed_operations(35, staff_user)
    with django_assert_max_num_queries(8):
        with_40 = page_queries(admin_client, url, 40)

    assert with_5 == with_40
