"""What a panel's failure does to an operation: typed errors, retried only when another attempt can help,
and stored as a message read in the reader's language (a panel's own words kept as they are)."""

import json

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import translation

from billing.choices import PanelAction, ProductType, ServiceStatus
from billing.services import service_mark_paid
from provisioning.choices import AttemptOutcome, OperationStatus
from provisioning.coremanager.emulator import EmulatorServer
from provisioning.models import FailedOperation, Operation, ProcessingModule
from tests.factories import DataCenterFactory
from tests.provisioning.conftest import OtherSite


def pay(service):
    service_mark_paid(service=service)
    return Operation.objects.get(service=service, action=PanelAction.OPEN)


def outcomes(operation):
    return list(operation.attempt_log.order_by("number").values_list("outcome", flat=True))


def raw(operation, column):
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM provisioning_operation WHERE id = %s", [operation.pk])  # noqa: S608
        return cursor.fetchone()[0]


@pytest.fixture
def other_site(request):
    with EmulatorServer(OtherSite(request.param)) as server:
        yield server


@pytest.mark.parametrize(
    ("other_site", "expected"),
    [
        ("403 Forbidden", "is not the panel's API address (HTTP 403)"),
        ("401 Unauthorized", "is not the panel's API address (HTTP 401)"),
        ("404 Not Found", "is not the panel's API address (HTTP 404)"),
        ("302 Found", "is not the panel's API address (HTTP 302)"),
        ("200 OK", "does not answer like the panel's API"),
    ],
    indirect=["other_site"],
)
def test_an_open_against_a_site_that_is_not_the_panel_fails_at_once_into_the_staff_queue(module, make_service, tasks, other_site, expected):
    module.url = other_site.url
    module.save()
    service = make_service()

    operation = pay(service)
    tasks.run_all()

    operation.refresh_from_db()
    service.refresh_from_db()
    assert (operation.status, operation.attempts, outcomes(operation)) == (OperationStatus.FAILED, 1, [AttemptOutcome.FAILED])
    assert expected in str(operation.last_error)
    assert service.status == ServiceStatus.FAILED
    assert list(FailedOperation.objects.all()) == [operation]


@pytest.mark.parametrize("other_site", ["502 Bad Gateway"], indirect=True)
def test_a_panel_answering_5xx_is_retried_until_the_last_attempt(module, make_service, tasks, settings, other_site):
    settings.PROVISIONING_MAX_ATTEMPTS = 3
    module.url = other_site.url
    module.save()

    operation = pay(make_service())
    tasks.run_all()

    operation.refresh_from_db()
    assert outcomes(operation) == [AttemptOutcome.RETRY, AttemptOutcome.RETRY, AttemptOutcome.FAILED]
    assert str(operation.last_error) == f"127.0.0.1:{other_site.port} answered HTTP 502"


def test_a_failure_of_the_panels_own_is_retried_and_then_opens(make_service, panel, tasks):
    panel.app.faults.fail_next(1, func="user.add.finish", error_type="sys")
    service = make_service()

    operation = pay(service)
    tasks.run_all()

    operation.refresh_from_db()
    assert outcomes(operation) == [AttemptOutcome.RETRY, AttemptOutcome.SUCCEEDED]
    assert str(operation.attempt_log.get(number=1).error) == "Injected sys error"
    assert list(panel.app.users) == [Operation.objects.get().service.panel_username]


@pytest.mark.parametrize("error_type", ["value", "access", "limit"])
def test_a_request_the_panel_refuses_is_not_retried_and_keeps_the_panels_words(make_service, panel, tasks, error_type):
    panel.app.faults.fail_next(1, func="user.add.finish", error_type=error_type)

    operation = pay(make_service())
    tasks.run_all()

    operation.refresh_from_db()
    assert (operation.status, outcomes(operation)) == (OperationStatus.FAILED, [AttemptOutcome.FAILED])
    assert raw(operation, "last_error") == f"Injected {error_type} error"  # verbatim, not a message to translate
    assert panel.app.users == {}


def test_our_own_results_and_errors_are_stored_as_messages_and_read_in_the_readers_language(make_service, panel, tasks):
    service = make_service()
    panel.app.faults.down = True
    operation = pay(service)
    tasks.run_next()
    panel.app.faults.down = False

    operation.refresh_from_db()
    stored_error = json.loads(raw(operation, "last_error"))
    assert stored_error["msgid"] == "cannot connect to %(host)s: %(reason)s"
    assert stored_error["params"]["host"] == f"127.0.0.1:{panel.port}"

    with translation.override("ru"):  # the open runs in Russian; its result is read in English and Russian
        tasks.run_all()
    operation.refresh_from_db()
    service.refresh_from_db()
    login = service.panel_username
    assert json.loads(raw(operation, "result")) == {"msgid": "Account %(login)s created.", "params": {"login": login}}
    reason = service.status_changes.get(to_status=ServiceStatus.ACTIVE).reason
    assert (str(operation.result), str(reason)) == (f"Account {login} created.",) * 2
    with translation.override("ru"):
        assert (str(operation.result), str(reason)) == (f"Аккаунт {login} создан.",) * 2


def module_form(url, **changes):
    return {
        "product_type": ProductType.VHOST,
        "kind": "ispmanager5",
        "url": url,
        "username": "root",
        "password": "secret",
        "verify_tls": "on",
        "data_center": DataCenterFactory().pk,
        "name": "Shared 1",
        "is_enabled": "on",
    } | changes


@pytest.mark.parametrize(
    ("other_site", "expected"),
    [
        ("403 Forbidden", "is not the panel&#x27;s API address (HTTP 403)"),
        ("200 OK", "does not answer like the panel&#x27;s API"),
    ],
    indirect=["other_site"],
)
def test_saving_a_module_whose_url_answers_but_is_not_the_panel_is_refused_and_saves_nothing(admin_client, other_site, expected):
    response = admin_client.post(reverse("admin:provisioning_processingmodule_add"), module_form(other_site.url))

    assert response.status_code == 200
    assert "Connection check failed:" in response.text
    assert expected in response.text
    assert not ProcessingModule.objects.exists()


@pytest.mark.parametrize("other_site", ["503 Service Unavailable"], indirect=True)
def test_saving_a_module_whose_panel_fails_on_its_side_saves_with_the_finding(admin_client, other_site):
    response = admin_client.post(reverse("admin:provisioning_processingmodule_add"), module_form(other_site.url), follow=True)

    module = ProcessingModule.objects.get()
    assert module.check_ok is False
    assert str(module.check_message) == f"127.0.0.1:{other_site.port} answered HTTP 503"
    assert "answered HTTP 503" in response.text
