"""The IPmanager integration's connection check, and the sync runs and changes as staff see them in the admin."""

from datetime import timedelta

import pytest
from django.contrib.messages import constants
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from ipam_sync.models import IPmanagerIntegration, SyncChange, SyncRun
from ipam_sync.services import note_for
from ipam_sync.sync import sync_ips_run
from tests.factories import IPmanagerIntegrationFactory, ServiceFactory

ADD_URL = reverse("admin:ipam_sync_ipmanagerintegration_add")
LIST_URL = reverse("admin:ipam_sync_ipmanagerintegration_changelist")
RUNS_URL = reverse("admin:ipam_sync_syncrun_changelist")
CHANGES_URL = reverse("admin:ipam_sync_syncchange_changelist")
SEED_USER = "User billing may take addresses in the groups: alias."


def add_data(url, **overrides):
    data = {
        "name": "IPmanager Moscow",
        "url": url,
        "username": "billing",
        "password": "secret",
        "admin_username": "",
        "admin_password": "",
        "ignored_ip_types": "",
        "_save": "Save",
    }
    data.update(overrides)
    return data


def shown(response):
    return [(message.level, str(message)) for message in response.context["messages"]]


def refusal(response):
    return " ".join(response.context["adminform"].form.non_field_errors())


def check_by_action(admin_client, integration):
    return admin_client.post(LIST_URL, {"action": "check_connection", "_selected_action": [integration.pk]}, follow=True)


# Check connection.


@pytest.mark.parametrize("how", ["on-save", "action"])
@pytest.mark.parametrize(
    ("admin", "message"),
    [
        ({}, SEED_USER),
        ({"admin_username": "admin", "admin_password": "secret"}, f"{SEED_USER} Synchronization runs as administrator admin."),
    ],
    ids=["user", "with-administrator"],
)
def test_check_connection_says_what_the_seeds_user_may_take(admin_client, ipmanager, how, admin, message):
    if how == "on-save":
        response = admin_client.post(ADD_URL, add_data(ipmanager.url, **admin), follow=True)
    else:
        integration = IPmanagerIntegrationFactory(
            name="IPmanager Moscow", url=ipmanager.url, username="billing", password="secret", **admin
        )
        response = check_by_action(admin_client, integration)

    assert response.status_code == 200
    assert (constants.SUCCESS, f"IPmanager Moscow: {message}") in shown(response)
    assert all(level == constants.SUCCESS for level, _ in shown(response))
    integration = IPmanagerIntegration.objects.get()
    assert (integration.check_ok, integration.check_message) == (True, message)
    assert integration.checked_at is not None


@pytest.mark.parametrize("how", ["on-save", "action"])
def test_a_dummy_user_with_no_ip_access_is_a_valid_integration(admin_client, ipmanager, how):
    ipmanager.app.add_user("dummy", "pw")
    message = "User dummy has no IP groups: a valid dummy integration, fine when dedicated IPs are not sold."
    if how == "on-save":
        response = admin_client.post(ADD_URL, add_data(ipmanager.url, name="Dummy", username="dummy", password="pw"), follow=True)
    else:
        integration = IPmanagerIntegrationFactory(name="Dummy", url=ipmanager.url, username="dummy", password="pw")
        response = check_by_action(admin_client, integration)

    assert (constants.SUCCESS, f"Dummy: {message}") in shown(response)
    integration = IPmanagerIntegration.objects.get()
    assert (integration.username, integration.check_ok, integration.check_message) == ("dummy", True, message)


@pytest.mark.parametrize(
    ("ispmanager_login", "name"),
    [("root", "root"), ("panel-user", "panel-user")],
    ids=["ispmanager-administrator", "ispmanager-user"],
)
def test_a_dummy_integration_through_ispmanager_business_saves_and_checks_fine(admin_client, ispmanager, ispmanager_login, name):
    if ispmanager_login == "panel-user":
        ispmanager.app.users["panel-user"] = {
            "name": "panel-user", "password": "secret", "fullname": "No IP access", "preset": "", "owner": "root",
            "active": True, "limits": {}, "domain": "",
        }  # fmt: skip
    message = (
        f"Logged in as {name}. Could not verify the IP groups: the panel has no function iptype (a panel that hands out "
        "no addresses is a valid dummy integration, fine when dedicated IPs are not sold)."
    )

    response = admin_client.post(ADD_URL, add_data(ispmanager.url, name="Dummy", username=ispmanager_login, password="secret"), follow=True)

    assert (constants.WARNING, f"Dummy: {message}") in shown(response)
    integration = IPmanagerIntegration.objects.get()
    assert (integration.url, integration.check_ok, integration.check_message) == (ispmanager.url, True, message)


@pytest.mark.parametrize(
    ("overrides", "said"),
    [
        ({"password": "wrong"}, "Connection check failed: wrong username or password"),
        ({"username": "nobody"}, "Connection check failed: wrong username or password"),
        ({"admin_username": "admin", "admin_password": "wrong"}, "Administrator login: wrong username or password"),
        ({"admin_username": "billing2", "admin_password": "pw2"}, "billing2 is not an IPmanager administrator (level 16, 29 needed)."),
    ],
    ids=["wrong-password", "unknown-user", "wrong-administrator-password", "administrator-is-a-plain-user"],
)
def test_credentials_that_do_not_work_are_refused_and_nothing_is_saved(admin_client, ipmanager, overrides, said):
    ipmanager.app.add_user("billing2", "pw2", pools=["133.31.223.200"], groups=["alias"])

    response = admin_client.post(ADD_URL, add_data(ipmanager.url, **overrides))

    assert response.status_code == 200
    assert refusal(response).startswith("Connection check failed: ")
    assert said in refusal(response)
    assert not IPmanagerIntegration.objects.exists()


def test_the_check_action_reports_a_password_changed_in_ipmanager_as_an_error(admin_client, ipmanager):
    integration = IPmanagerIntegrationFactory(name="IPmanager Moscow", url=ipmanager.url, username="billing", password="secret")
    ipmanager.app.users["billing"].password = "changed"

    response = check_by_action(admin_client, integration)

    ((level, message),) = shown(response)
    assert level == constants.ERROR
    assert message.startswith("IPmanager Moscow: wrong username or password")
    integration.refresh_from_db()
    assert integration.check_ok is False
    assert str(integration.check_message).startswith("wrong username or password")


def test_an_unreachable_ipmanager_does_not_block_saving_and_says_why(admin_client, ipmanager):
    ipmanager.app.faults.down = True

    response = admin_client.post(ADD_URL, add_data(ipmanager.url), follow=True)

    integration = IPmanagerIntegration.objects.get()
    assert integration.check_ok is False
    assert "cannot connect" in integration.check_message
    assert (constants.ERROR, f"IPmanager Moscow: {integration.check_message}") in shown(response)


# Sync runs and changes.


@pytest.fixture
def synced(ipmanager, db):
    """One real run: one address released, one foreign address skipped, one marked allocated."""
    integration = IPmanagerIntegrationFactory(name="IPmanager Moscow", url=ipmanager.url, username="billing", password="secret")
    ipmanager.app.take("133.31.223.5", owner="billing", note=note_for(999))
    ipmanager.app.take("133.31.223.7", owner="billing", note="manual")
    integration.assignments.create(service=ServiceFactory(), address="133.31.223.9")
    return sync_ips_run(integration=integration, max_release=50)


def test_the_sync_run_list_shows_each_run_with_its_counts_read_only(admin_client, synced):
    response = admin_client.get(RUNS_URL)

    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [synced]
    html = response.content.decode()
    assert "Released 1, marked allocated 1, skipped 1, failed 0." in html
    assert f"{CHANGES_URL}?run__id__exact={synced.pk}" in html
    assert reverse("admin:ipam_sync_syncrun_add") not in html
    assert not response.context["cl"].model_admin.get_action_choices(response.wsgi_request)[1:], "no delete action"


def test_the_sync_change_list_shows_what_each_run_did_and_why(admin_client, synced):
    response = admin_client.get(CHANGES_URL, {"run__id__exact": synced.pk})

    assert response.status_code == 200
    rows = {(change.address, change.action, change.result) for change in response.context["cl"].result_list}
    assert rows == {
        ("133.31.223.5", "release", "done"),
        ("133.31.223.7", "release", "skipped"),
        ("133.31.223.9", "allocate", "done"),
    }
    html = response.content.decode()
    assert "not taken by this billing (note: manual)" in html
    assert "used in IPmanager, held by no service" in html


@pytest.mark.parametrize("model", ["syncrun", "syncchange"])
def test_runs_and_changes_cannot_be_added_edited_or_deleted(admin_client, synced, model):
    obj = synced if model == "syncrun" else synced.changes.first()
    change_url = reverse(f"admin:ipam_sync_{model}_change", args=[obj.pk])

    page = admin_client.get(change_url)
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert admin_client.post(change_url, {"status": "done", "result": "done"}).status_code == 403
    assert admin_client.get(reverse(f"admin:ipam_sync_{model}_add")).status_code == 403
    assert admin_client.post(reverse(f"admin:ipam_sync_{model}_delete", args=[obj.pk]), {"post": "yes"}).status_code == 403
    assert SyncRun.objects.count() == 1
    assert SyncChange.objects.count() == 3


def test_the_integration_list_shows_the_last_sync_of_each_integration(admin_client, ipmanager, db):
    integration = IPmanagerIntegrationFactory(name="IPmanager Moscow", url=ipmanager.url)
    never = IPmanagerIntegrationFactory(name="IPmanager Spb", url=ipmanager.url)
    older = SyncRun.objects.create(integration=integration, status="failed", message="The IPmanager list could not be read")
    SyncRun.objects.filter(pk=older.pk).update(started_at=timezone.now() - timedelta(days=1))
    SyncRun.objects.create(integration=integration, status="done", message="Released 2, marked allocated 0, skipped 0, failed 0.")

    response = admin_client.get(LIST_URL)

    assert response.status_code == 200
    html = response.content.decode()
    assert "Released 2, marked allocated 0, skipped 0, failed 0." in html
    assert "The IPmanager list could not be read" not in html
    assert f"{RUNS_URL}?integration__id__exact={integration.pk}" in html
    assert f"{RUNS_URL}?integration__id__exact={never.pk}" not in html


# Query counts.


def add_integrations(count, with_runs):
    for integration in IPmanagerIntegrationFactory.create_batch(
        count, admin_username="admin", admin_password="pw", ignored_ip_types=["public"]
    ):
        if with_runs:
            SyncRun.objects.create(integration=integration, status="done", message="Released 0, marked allocated 0, skipped 0, failed 0.")
            SyncRun.objects.create(integration=integration, status="refused", message="3 addresses would be released")


def add_runs(count, with_runs):
    for _ in range(count):
        SyncRun.objects.create(integration=IPmanagerIntegrationFactory(), status="done")


def add_changes(count, with_runs):
    for n in range(count):
        run = SyncRun.objects.create(integration=IPmanagerIntegrationFactory(), status="done")
        SyncChange.objects.create(run=run, action="release", address=f"10.0.0.{n + 1}", result="done", reason="held by no service")


def list_page_queries(client, url, rows):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    assert response.context["cl"].result_count == rows
    return len(queries)


# Changelist, how to add its rows, and the most queries its page may run (whatever the row count).
@pytest.mark.parametrize(
    ("url", "add", "with_runs", "most"),
    [
        pytest.param(LIST_URL, add_integrations, True, 5, id="integrations-with-runs"),
        pytest.param(LIST_URL, add_integrations, False, 5, id="integrations-never-synced"),
        pytest.param(RUNS_URL, add_runs, True, 8, id="sync-runs"),  # with its date hierarchy and integration filter
        pytest.param(CHANGES_URL, add_changes, True, 6, id="sync-changes"),
    ],
)
def test_list_pages_run_as_many_queries_for_5_rows_as_for_40(admin_client, url, add, with_runs, most):
    add(5, with_runs)
    few = list_page_queries(admin_client, url, 5)
    add(35, with_runs)
    many = list_page_queries(admin_client, url, 40)

    assert many == few
    assert few <= most
