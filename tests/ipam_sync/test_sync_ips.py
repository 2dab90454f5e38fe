"""sync_ips: billing and IPmanager agree on who holds which address, safely."""

import copy
import ipaddress
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from billing.choices import PanelAction, ServiceStatus
from billing.services import service_action_request, service_mark_paid
from ipam_sync.models import IPAssignment, SyncChange, SyncRun
from ipam_sync.services import note_for
from ipam_sync.sync import SyncBusy, sync_ips_run
from tests.conftest import postgres_only, run_at_once
from tests.factories import IPmanagerIntegrationFactory, ServiceFactory

RELEASED = ("release", "done", "used in IPmanager, held by no service")
ALLOCATED = ("allocate", "done", "held by a live service in billing")


def sync(integration, **options):
    options.setdefault("max_release", 50)
    return sync_ips_run(integration=integration, **options)


def command(*args, **options):
    """Run `sync_ips`; returns (output, the CommandError or None)."""
    out = StringIO()
    try:
        call_command("sync_ips", *args, stdout=out, **options)
    except CommandError as error:
        return out.getvalue(), error
    return out.getvalue(), None


def entry(ipm, address):
    return ipm.allocated.get(int(ipaddress.ip_address(address)))


def changes(run):
    return {change.address: (change.action, change.result, str(change.reason)) for change in run.changes.all()}


def changing_calls(ipm):
    return [(func, params) for func, params in ipm.calls if func == "ip.delete" or (func == "ip.edit" and params.get("sok"))]


def ours(ipm, address, service_id=999, **fields):
    """An address billing took (its note), for a service that no longer holds it."""
    ipm.take(address, owner="billing", note=note_for(service_id), **fields)


# Both directions.


@pytest.mark.parametrize("in_billing", ["never", "released-assignment"])
def test_an_address_used_in_ipmanager_and_held_by_no_service_is_released(integration, ipm, live_assignment, in_billing):
    ours(ipm, "133.31.223.5", domain="old.example.com")
    if in_billing == "released-assignment":
        live_assignment("133.31.223.5")
        IPAssignment.objects.update(released_at=timezone.now())

    run = sync(integration)

    assert entry(ipm, "133.31.223.5") is None
    assert (run.status, run.released, run.allocated, run.failed) == ("done", 1, 0, 0)
    assert changes(run) == {"133.31.223.5": RELEASED}


def test_an_address_held_by_a_live_service_and_free_in_ipmanager_is_marked_allocated(integration, ipm, live_assignment):
    service = ServiceFactory(domain="shop.example.com")
    live_assignment("133.31.223.9", service=service)

    run = sync(integration)

    assert entry(ipm, "133.31.223.9") == {
        "ip": "133.31.223.9", "iptype": "alias", "domain": "shop.example.com.", "note": note_for(service.pk), "owner": "billing",
    }  # fmt: skip  # the PTR name as IPmanager writes it, with the trailing dot
    assert (run.status, run.released, run.allocated, run.failed) == ("done", 0, 1, 0)
    assert changes(run) == {"133.31.223.9": ALLOCATED}


def test_an_address_marked_allocated_gets_the_ptr_name_without_the_dot_when_switched_off(integration, ipm, live_assignment, settings):
    settings.IPAM_PTR_TRAILING_DOT = False
    live_assignment("133.31.223.9", service=ServiceFactory(domain="shop.example.com"))

    sync(integration)

    assert entry(ipm, "133.31.223.9")["domain"] == "shop.example.com"


def test_both_directions_in_one_run_are_applied_and_recorded(integration, ipm, live_assignment):
    ours(ipm, "133.31.223.5")
    live_assignment("133.31.223.9")
    agreed = live_assignment("133.31.223.1")
    ours(ipm, "133.31.223.1", service_id=agreed.service_id, domain=agreed.service.domain)
    before = copy.deepcopy(entry(ipm, "133.31.223.1"))
    progress = []

    run = sync(integration, progress=lambda done, total: progress.append((done, total)))

    run.refresh_from_db()
    assert (run.status, run.dry_run, run.as_administrator) == ("done", False, False)
    assert (run.listed, run.released, run.allocated, run.skipped, run.failed) == (2, 1, 1, 0, 0)
    assert run.message == "Released 1, marked allocated 1, skipped 0, failed 0."
    assert run.finished_at is not None
    assert changes(run) == {"133.31.223.5": RELEASED, "133.31.223.9": ALLOCATED}
    assert entry(ipm, "133.31.223.5") is None
    assert entry(ipm, "133.31.223.9")["owner"] == "billing"
    assert entry(ipm, "133.31.223.1") == before
    assert progress[-1] == (2, 2)


def test_the_integration_admin_list_shows_the_last_runs_outcome(admin_client, integration, ipm):
    ours(ipm, "133.31.223.5")
    run = sync(integration)

    html = admin_client.get(reverse("admin:ipam_sync_ipmanagerintegration_changelist")).content.decode()

    assert "Released 1, marked allocated 0, skipped 0, failed 0." in html
    assert f"Done {timezone.localtime(run.started_at):%Y-%m-%d %H:%M}" in html
    assert f"?integration__id__exact={integration.pk}" in html


# Administrator credentials.


@pytest.mark.parametrize(("admin", "listed", "expected"), [(False, 1, {}), (True, 3, "skipped")])
def test_with_administrator_credentials_sync_sees_the_addresses_of_other_users(integration, as_admin, ipm, admin, listed, expected):
    ipm.add_user("other", "pw", pools=["133.31.223.129-133.31.223.255"], groups=["alias"])
    ipm.take("133.31.223.200", owner="other", note="vps 17")
    ipm.take("133.31.223.201", owner="other")
    live = ServiceFactory()
    ipm.take("133.31.223.3", owner="billing", note=note_for(live.pk))
    IPAssignment.objects.create(integration=integration, service=live, address="133.31.223.3")
    if admin:
        as_admin()

    run = sync(integration)

    assert (run.status, run.as_administrator, run.listed, run.released) == ("done", admin, listed, 0)
    if expected:
        assert {address: change[1] for address, change in changes(run).items()} == {
            "133.31.223.200": "skipped",
            "133.31.223.201": "skipped",
        }
        assert "note: vps 17" in changes(run)["133.31.223.200"][2]
        assert "note: none" in changes(run)["133.31.223.201"][2]
    else:
        assert changes(run) == expected
    assert sorted(ipm.owned_by("other")) == ["133.31.223.200", "133.31.223.201"]


@pytest.mark.parametrize("admin", [False, True], ids=["user", "administrator"])
def test_an_address_outside_the_users_pool_is_marked_allocated_only_with_administrator_credentials(
    integration, as_admin, ipm, live_assignment, admin
):
    outside = live_assignment("133.31.223.200")
    live_assignment("133.31.223.10")
    if admin:
        as_admin()

    out, error = command()

    run = SyncRun.objects.get()
    assert run.status == "done"
    assert entry(ipm, "133.31.223.10")["owner"] == "billing"
    if admin:
        assert error is None
        assert (run.allocated, run.failed) == (2, 0)
        assert entry(ipm, "133.31.223.200") == {
            "ip": "133.31.223.200", "iptype": "alias", "domain": f"{outside.service.domain}.",
            "note": note_for(outside.service_id), "owner": "billing",
        }  # fmt: skip
    else:
        assert error is not None and "IPmanager Moscow" in str(error)
        assert (run.allocated, run.failed) == (1, 1)
        action, result, reason = changes(run)["133.31.223.200"]
        assert (action, result) == ("allocate", "failed")
        assert reason.startswith("insufficient permission")
        assert "administrator credentials" in reason
        assert entry(ipm, "133.31.223.200") is None
        assert "133.31.223.200: Failed (insufficient permission" in out


def test_with_administrator_credentials_the_live_addresses_of_another_integration_are_not_released(
    integration, as_admin, ipmanager, ipm, live_assignment
):
    ipm.add_user("billing-spb", "pw", pools=["133.31.223.129-133.31.223.255"], groups=["alias"])
    spb = IPmanagerIntegrationFactory(name="IPmanager Spb", url=ipmanager.url, username="billing-spb", password="pw")
    held = live_assignment("133.31.223.130", target=spb)
    ipm.take("133.31.223.130", owner="billing-spb", note=note_for(held.service_id), domain=held.service.domain)
    as_admin()

    run = sync(integration)

    assert run.status == "done"
    assert entry(ipm, "133.31.223.130") is not None, "a paying customer's address was released"
    assert run.released == 0


# Addresses billing did not take.


@pytest.mark.parametrize(
    ("admin", "release_foreign", "released"),
    [(False, False, False), (True, False, False), (False, True, False), (True, True, True)],
    ids=["user", "administrator", "user-release-foreign", "administrator-release-foreign"],
)
def test_a_foreign_address_is_released_only_with_administrator_credentials_and_release_foreign(
    integration, as_admin, ipm, admin, release_foreign, released
):
    ipm.take("133.31.223.7", owner="billing", note="manual")
    if admin:
        as_admin()

    run = sync(integration, release_foreign=release_foreign)

    assert run.status == "done"
    if released:
        assert entry(ipm, "133.31.223.7") is None
        assert (run.released, run.skipped) == (1, 0)
        assert changes(run)["133.31.223.7"][:2] == ("release", "done")
    else:
        assert entry(ipm, "133.31.223.7")["note"] == "manual"
        assert (run.released, run.skipped) == (0, 1)
        action, result, reason = changes(run)["133.31.223.7"]
        assert (action, result) == ("release", "skipped")
        assert "not taken by this billing (note: manual)" in reason


def test_the_command_releases_foreign_addresses_with_release_foreign(integration, as_admin, ipm):
    ipm.take("133.31.223.7", owner="billing", note="manual")
    as_admin()

    _, kept = command()
    assert entry(ipm, "133.31.223.7") is not None
    out, error = command("--release-foreign")

    assert (kept, error) == (None, None)
    assert entry(ipm, "133.31.223.7") is None
    assert "as administrator" in out
    assert SyncRun.objects.order_by("pk").last().released == 1


# Ignored IP types.


@pytest.mark.parametrize("ignore", [True, False], ids=["ignored", "not-ignored"])
def test_ignored_ip_types_are_left_out_on_both_sides(integration, ipm, live_assignment, ignore):
    ipm.users["billing"].groups.add("public")
    integration.ignore_ip_types, integration.ignored_ip_types = ignore, ["public"]
    integration.save()
    ours(ipm, "133.31.223.50", iptype="public")
    public = live_assignment("133.31.223.51", ip_type="public")
    ours(ipm, "133.31.223.52")

    run = sync(integration)

    assert entry(ipm, "133.31.223.52") is None, "alias addresses are handled either way"
    if ignore:
        assert entry(ipm, "133.31.223.50")["iptype"] == "public"
        assert entry(ipm, "133.31.223.51") is None
        assert (run.released, run.allocated) == (1, 0)
        assert set(changes(run)) == {"133.31.223.52"}
    else:
        assert entry(ipm, "133.31.223.50") is None
        assert entry(ipm, "133.31.223.51") == {
            "ip": "133.31.223.51", "iptype": "public", "domain": f"{public.service.domain}.",
            "note": note_for(public.service_id), "owner": "billing",
        }  # fmt: skip
        assert (run.released, run.allocated) == (2, 1)


# Safety rails.


def test_dry_run_prints_and_records_the_plan_and_changes_nothing(integration, ipm, live_assignment):
    ours(ipm, "133.31.223.5")
    live_assignment("133.31.223.9")
    ipm.take("133.31.223.7", owner="billing", note="manual")
    before = copy.deepcopy(ipm.allocated)

    out, error = command("--dry-run")

    assert error is None
    assert ipm.allocated == before
    assert changing_calls(ipm) == []
    run = SyncRun.objects.get()
    assert (run.status, run.dry_run, run.released, run.allocated, run.skipped) == ("done", True, 0, 0, 1)
    assert run.message == "Dry run: 1 to release, 1 to mark allocated."
    assert {address: change[:2] for address, change in changes(run).items()} == {
        "133.31.223.5": ("release", "planned"),
        "133.31.223.9": ("allocate", "planned"),
        "133.31.223.7": ("release", "skipped"),
    }
    assert "Dry run: 1 to release, 1 to mark allocated." in out
    assert "Release in IPmanager 133.31.223.5: Planned (not applied) (dry run)" in out
    assert "Mark allocated in IPmanager 133.31.223.9: Planned (not applied) (dry run)" in out
    assert "133.31.223.7: Skipped (not taken by this billing" in out


@pytest.mark.parametrize(
    ("fault", "said"),
    [("cut", "cut off"), ("down", "cannot connect"), ("http-503", "HTTP 503")],
)
def test_a_list_not_read_completely_fails_the_run_and_changes_nothing(integration, ipm, live_assignment, fault, said):
    ours(ipm, "133.31.223.5")
    live_assignment("133.31.223.9")
    before = copy.deepcopy(ipm.allocated)
    if fault == "cut":
        ipm.faults.cut_reply_next(func="ip")
    elif fault == "down":
        ipm.faults.down = True
    else:
        ipm.faults.fail_next(func="ip")

    out, error = command()

    assert error is not None
    run = SyncRun.objects.get()
    assert run.status == "failed"
    assert str(run.message).startswith("The IPmanager list could not be read completely, nothing was changed")
    assert said in str(run.message)
    assert str(run.message) in out
    assert (run.released, run.allocated) == (0, 0)
    assert not SyncChange.objects.exists()
    assert ipm.allocated == before
    assert changing_calls(ipm) == []


@pytest.mark.parametrize(
    ("args", "status", "released"),
    [
        (["--max-release", "2"], "refused", 0),
        (["--max-release", "3"], "done", 3),
        (["--max-release", "2", "--force"], "done", 3),
        ([], "refused", 0),  # SYNC_IPS_MAX_RELEASE = 2
    ],
    ids=["above-the-cap", "at-the-cap", "forced", "cap-from-settings"],
)
def test_the_release_cap_refuses_a_run_unless_forced(integration, ipm, settings, args, status, released):
    settings.SYNC_IPS_MAX_RELEASE = 2
    for n in (5, 6, 7):
        ours(ipm, f"133.31.223.{n}")

    out, error = command(*args)

    run = SyncRun.objects.get()
    assert (run.status, run.released) == (status, released)
    assert len(ipm.allocated) == 3 - released
    if status == "refused":
        assert error is not None
        assert "Addresses to release: 3, more than the cap of 2: nothing was changed" in str(run.message)
        assert str(run.message) in out
        assert changing_calls(ipm) == []
        assert set(run.changes.values_list("result", "reason")) == {("planned", "refused: above the release cap")}
        assert run.changes.count() == 3
    else:
        assert error is None
        assert run.changes.filter(result="done").count() == 3


BATCH = "133.31.223.5, 133.31.223.6, 133.31.223.7"


@pytest.mark.parametrize(
    ("fault", "reason", "batch_reached_ipmanager"),
    [("refused-batch", "used in IPmanager, held by no service", False), ("lost-reply", "already free", True)],
)
def test_a_failed_batch_release_goes_address_by_address_and_none_is_released_twice(
    integration, ipm, fault, reason, batch_reached_ipmanager
):
    for n in (5, 6, 7):
        ours(ipm, f"133.31.223.{n}")
    if fault == "refused-batch":
        ipm.faults.fail_next(func="ip.delete", error_type="value")
    else:
        ipm.faults.drop_reply_next(func="ip.delete")

    run = sync(integration)

    assert ipm.allocated == {}
    assert (run.status, run.released, run.failed) == ("done", 3, 0)
    assert changes(run) == dict.fromkeys(BATCH.split(", "), ("release", "done", reason))
    deletes = [params["elid"] for func, params in ipm.calls if func == "ip.delete"]
    assert deletes == [BATCH] * batch_reached_ipmanager + BATCH.split(", ")


def test_a_dummy_integration_has_nothing_to_do(ipmanager, ipm, db):
    ipm.add_user("dummy", "pw")
    ours(ipm, "133.31.223.5")
    dummy = IPmanagerIntegrationFactory(name="Dummy", url=ipmanager.url, username="dummy", password="pw")

    out, error = command("Dummy")

    assert error is None
    run = SyncRun.objects.get()
    assert (run.integration, run.status, run.listed, run.released, run.allocated, run.skipped, run.failed) == (dummy, "done", 0, 0, 0, 0, 0)
    assert entry(ipm, "133.31.223.5") is not None
    assert "Dummy (addresses in IPmanager: 0, as integration user): Done." in out


def test_a_dummy_integration_through_ispmanager_business_has_nothing_to_do(ispmanager, db):
    IPmanagerIntegrationFactory(name="Dummy", url=ispmanager.url, username="root", password="secret")

    out, error = command()

    run = SyncRun.objects.get()
    assert (run.status, run.released, run.allocated, run.failed) == ("done", 0, 0, 0)
    assert "Dummy (addresses in IPmanager: 0" in out
    assert error is None


def test_a_second_run_right_after_the_first_changes_nothing(integration, ipm, live_assignment):
    ours(ipm, "133.31.223.5")
    live_assignment("133.31.223.9")
    first = sync(integration)
    calls = len(ipm.calls)

    second = sync(integration)

    assert (first.released, first.allocated) == (1, 1)
    assert (second.status, second.released, second.allocated, second.failed) == ("done", 0, 0, 0)
    assert second.message == "Released 0, marked allocated 0, skipped 0, failed 0."
    assert not second.changes.exists()
    assert [func for func, _ in ipm.calls[calls:]] == ["ip"]


def test_after_services_opened_and_one_deleted_sync_changes_nothing(make_service, ipm, panel, tasks):
    kept, deleted = make_service(ips=2), make_service(ips=1)
    for service in (kept, deleted):
        service_mark_paid(service=service)
    tasks.run_all()
    service_action_request(service=deleted, action=PanelAction.CLOSE)
    tasks.run_all()
    deleted.refresh_from_db()
    assert deleted.status == ServiceStatus.DELETED
    assert entry(ipm, deleted.ip_assignments.get().address) is None

    run = sync(kept.tariff.processing_module.ipmanager)

    assert (run.status, run.listed, run.released, run.allocated, run.skipped, run.failed) == ("done", 2, 0, 0, 0, 0)
    assert sorted(ipm.owned_by("billing")) == sorted(kept.ip_assignments.values_list("address", flat=True))


def test_an_address_taken_by_an_open_awaiting_its_retry_ends_consistent_after_a_sync(make_service, ipm, panel, tasks):
    service = make_service(ips=1)
    ipm.faults.drop_reply_next(func="ip.edit")
    service_mark_paid(service=service)
    tasks.run_next()  # IPmanager allocated the address, the reply was lost: the open waits for its retry
    (taken,) = ipm.owned_by("billing")
    assert not service.ip_assignments.exists()

    run = sync(service.tariff.processing_module.ipmanager)
    tasks.run_all()

    assert changes(run) == {taken: RELEASED}
    service.refresh_from_db()
    assert service.status == ServiceStatus.ACTIVE
    (held,) = service.ip_assignments.values_list("address", flat=True)
    assert ipm.owned_by("billing") == [held]
    assert entry(ipm, held)["note"] == note_for(service.pk)
    assert list(panel.app.ip_addresses) == [held]
    assert sync(service.tariff.processing_module.ipmanager).changes.count() == 0


# Runs at once.


@pytest.mark.parametrize(("age", "busy"), [(timedelta(minutes=1), True), (timedelta(hours=1), True), (timedelta(hours=3), False)])
def test_a_running_sync_blocks_another_until_it_is_stale(integration, ipm, age, busy):
    ours(ipm, "133.31.223.5")
    running = SyncRun.objects.create(integration=integration)
    SyncRun.objects.filter(pk=running.pk).update(started_at=timezone.now() - age)

    if busy:
        with pytest.raises(SyncBusy):
            sync(integration)
        out, error = command()
        assert error is None
        assert "IPmanager Moscow: skipped, a sync of IPmanager Moscow is already running." in out
        assert SyncRun.objects.get().status == "running"
        assert entry(ipm, "133.31.223.5") is not None
    else:
        run = sync(integration)
        assert (run.status, run.released) == ("done", 1)
        running.refresh_from_db()
        assert (running.status, running.message) == ("failed", "The process running it stopped.")
        assert running.finished_at is not None


def test_a_running_sync_of_another_integration_does_not_block(integration, ipmanager, ipm):
    SyncRun.objects.create(integration=IPmanagerIntegrationFactory(url=ipmanager.url))
    ours(ipm, "133.31.223.5")

    run = sync(integration)

    assert (run.status, run.released) == ("done", 1)


@postgres_only()
def test_two_syncs_at_once_for_one_integration_run_once_and_release_each_address_once(integration, ipm, transactional_db):
    for n in (5, 6):
        ours(ipm, f"133.31.223.{n}")
    ipm.faults.delay = 0.3

    outcomes = run_at_once(2, lambda i: sync(integration))

    assert sorted(type(outcome).__name__ for outcome in outcomes) == ["NoneType", "SyncBusy"]
    run = SyncRun.objects.get()
    assert (run.status, run.released) == ("done", 2)
    assert ipm.allocated == {}
    assert [func for func, _ in ipm.calls].count("ip.delete") == 1
    assert SyncChange.objects.filter(action="release", result="done").count() == 2


# The command.


def test_the_command_refuses_an_unknown_integration_name(integration):
    with pytest.raises(CommandError, match="No IPmanager integration named Nope"):
        call_command("sync_ips", "IPmanager Moscow", "Nope", stdout=StringIO())

    assert not SyncRun.objects.exists()


def test_the_command_syncs_only_the_named_integration_or_all_of_them(integration, ipmanager, ipm):
    other = IPmanagerIntegrationFactory(name="IPmanager Spb", url=ipmanager.url, username="billing", password="secret")
    ours(ipm, "133.31.223.5")

    out, error = command("IPmanager Spb")

    assert error is None
    assert list(SyncRun.objects.values_list("integration", flat=True)) == [other.pk]
    assert "IPmanager Spb (addresses in IPmanager: 1, as integration user): Done. Released 1" in out

    out, error = command()

    assert error is None
    assert out.index("IPmanager Moscow") < out.index("IPmanager Spb")
    assert SyncRun.objects.filter(integration=integration).count() == 1
    assert SyncRun.objects.filter(integration=other).count() == 2


def test_the_command_lists_every_change_with_verbosity_2(integration, ipm):
    ours(ipm, "133.31.223.5")

    quiet, _ = command()
    ours(ipm, "133.31.223.6")
    loud, _ = command(verbosity=2)

    assert "133.31.223.5" not in quiet
    assert "Release in IPmanager 133.31.223.6: Done (used in IPmanager, held by no service)" in loud
