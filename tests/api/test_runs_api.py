"""The API's billing runs and IPmanager sync runs: staff read them and start a sync dry run, which a task carries out."""

from datetime import date, timedelta

import pytest
from django.utils import timezone

from billing.models import BillingRun
from ipam_sync.models import SyncChange, SyncRun
from ipam_sync.services import note_for
from tests.api.test_money_api import bearer, client_with_user, post, staff_with
from tests.factories import IPmanagerIntegrationFactory, SyncRunFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(staff_user):
    return bearer(staff_user)


@pytest.fixture
def integration(ipmanager):
    return IPmanagerIntegrationFactory(name="IPmanager Moscow", url=ipmanager.url, username="billing", password="secret")


def billing_run(day, **counts):
    now = timezone.now()
    return BillingRun.objects.create(day=day, status="done", started_at=now, lease_until=now, finished_at=now, **counts)


def test_staff_read_billing_runs_with_counts_per_action(staff):
    older = billing_run(date(2026, 3, 1), renewed=4, failed=1)
    newer = billing_run(date(2026, 3, 2), notified=7, suspended=2, resumed=1, deleted=3)

    rows = staff.get("/api/v1/billing-runs").json()["results"]
    detail = staff.get(f"/api/v1/billing-runs/{older.pk}").json()

    assert [row["id"] for row in rows] == [newer.pk, older.pk]
    assert rows[0]["counts"] == {"renewed": 0, "notified": 7, "suspended": 2, "resumed": 1, "deleted": 3, "failed": 0}
    assert (detail["day"], detail["status"], detail["counts"]["renewed"], detail["counts"]["failed"]) == ("2026-03-01", "done", 4, 1)
    assert [row["id"] for row in staff.get("/api/v1/billing-runs?day_after=2026-03-02").json()["results"]] == [newer.pk]


def test_runs_are_staff_only_and_need_the_view_permission():
    _, user = client_with_user()
    run = SyncRunFactory()
    client_api = bearer(user)
    for url in ("/api/v1/billing-runs", "/api/v1/sync-runs", f"/api/v1/sync-runs/{run.pk}"):
        assert client_api.get(url).status_code == 403
    assert bearer(staff_with()).get("/api/v1/billing-runs").status_code == 403
    assert bearer(staff_with("billing.view_billingrun")).get("/api/v1/billing-runs").status_code == 200
    assert bearer(staff_with("billing.view_billingrun")).get("/api/v1/sync-runs").status_code == 403


def test_staff_read_sync_runs_filtered_by_integration(staff, integration):
    other = SyncRunFactory(message="Dry run: 0 to release, 0 to mark allocated.")
    mine = SyncRunFactory(integration=integration, dry_run=True, listed=12, released=0)

    rows = staff.get(f"/api/v1/sync-runs?integration={integration.pk}").json()["results"]

    listed = [(row["id"], row["integration_name"], row["dry_run"], row["listed"]) for row in rows]
    assert listed == [(mine.pk, "IPmanager Moscow", True, 12)]
    assert staff.get(f"/api/v1/sync-runs/{other.pk}").json()["message"] == "Dry run: 0 to release, 0 to mark allocated."


def test_staff_start_a_dry_run_that_a_task_carries_out_changing_nothing(
    staff, integration, ipmanager, tasks, django_capture_on_commit_callbacks
):
    ipmanager.app.take("133.31.223.5", owner="billing", note=note_for(999))  # billing's note, held by no service

    with django_capture_on_commit_callbacks(execute=True):
        answer = post(staff, "/api/v1/sync-runs", {"integration": integration.pk})

    assert answer.status_code == 202
    run = SyncRun.objects.get()
    assert (answer.json()["id"], answer.json()["status"], answer.json()["dry_run"]) == (run.pk, "running", True)
    assert ipmanager.app.calls == []  # no panel call inside the request
    assert tasks.run_all() == 1
    detail = staff.get(f"/api/v1/sync-runs/{run.pk}").json()
    assert (detail["status"], detail["listed"], detail["message"]) == ("done", 1, "Dry run: 1 to release, 0 to mark allocated.")
    assert list(SyncChange.objects.values_list("address", "action", "result")) == [("133.31.223.5", "release", "planned")]
    assert ipmanager.app.allocated  # the address is still taken: a dry run changes nothing


def test_a_dry_run_is_refused_while_a_run_of_the_integration_is_under_way(staff, integration, tasks):
    SyncRun.objects.create(integration=integration)

    answer = post(staff, "/api/v1/sync-runs", {"integration": integration.pk})

    assert (answer.status_code, answer.json()["code"]) == (409, "sync_in_progress")
    assert answer.json()["message"] == "A synchronization of this integration is already running."
    assert SyncRun.objects.count() == 1
    assert tasks.pending() == []


def test_a_run_left_running_by_a_dead_process_no_longer_blocks(staff, integration, tasks, django_capture_on_commit_callbacks):
    stale = SyncRun.objects.create(integration=integration)
    SyncRun.objects.filter(pk=stale.pk).update(started_at=timezone.now() - timedelta(hours=3))

    with django_capture_on_commit_callbacks(execute=True):
        answer = post(staff, "/api/v1/sync-runs", {"integration": integration.pk})

    assert answer.status_code == 202
    assert SyncRun.objects.get(pk=stale.pk).status == "failed"
    assert len(tasks.pending()) == 1


def test_a_dry_run_of_an_unknown_integration_is_refused(staff, tasks):
    answer = post(staff, "/api/v1/sync-runs", {"integration": 999999})
    assert (answer.status_code, answer.json()["fields"]) == (400, {"integration": ['Invalid pk "999999" - object does not exist.']})
    assert not SyncRun.objects.exists()


def test_starting_a_dry_run_needs_the_integrations_change_permission(integration, tasks):
    viewer = bearer(staff_with("ipam_sync.view_syncrun"))
    assert post(viewer, "/api/v1/sync-runs", {"integration": integration.pk}).status_code == 403
    _, user = client_with_user()
    assert post(bearer(user), "/api/v1/sync-runs", {"integration": integration.pk}).status_code == 403
    assert not SyncRun.objects.exists()
    manager = bearer(staff_with("ipam_sync.view_syncrun", "ipam_sync.change_ipmanagerintegration"))
    assert post(manager, "/api/v1/sync-runs", {"integration": integration.pk}).status_code == 202


def test_a_dry_run_start_replays_for_the_same_key(staff, integration, tasks):
    first = post(staff, "/api/v1/sync-runs", {"integration": integration.pk})
    again = post(staff, "/api/v1/sync-runs", {"integration": integration.pk})
    assert (first.status_code, again.status_code, again.json()) == (202, 202, first.json())
    assert SyncRun.objects.count() == 1


# Token lookup 1, the count 1, the page 1.
@pytest.mark.parametrize("url", ["/api/v1/billing-runs?page_size=200", "/api/v1/sync-runs?page_size=200"])
def test_each_run_list_reads_200_rows_in_three_queries(staff, django_assert_num_queries, url):
    BillingRun.objects.bulk_create(
        BillingRun(day=date(2026, 1, 1) + timedelta(days=n), status="done", started_at=timezone.now(), lease_until=timezone.now())
        for n in range(200)
    )
    integrations = IPmanagerIntegrationFactory.create_batch(20)
    SyncRun.objects.bulk_create(SyncRun(integration=integrations[n % 20], status="done") for n in range(200))
    staff.get("/api/v1/me")

    with django_assert_num_queries(3):
        answer = staff.get(url)

    assert len(answer.json()["results"]) == 200
