"""sync_accounts: billing's services and the panel's accounts compared, the safe fixes queued, nothing deleted."""

import copy
import html
import io
import json
from datetime import timedelta
from io import StringIO
from urllib.parse import parse_qsl

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from billing.choices import PanelAction, ResourceKind, ServiceStatus, SuspendReason
from billing.models import Service
from billing.services import service_action_request, service_mark_paid
from provisioning.accounts_sync import SyncBusy, finding_dismiss, finding_fix_queue, sync_accounts_run
from provisioning.choices import OperationStatus
from provisioning.coremanager.emulator import EmulatorServer
from provisioning.ispmanager.emulator import ISPmanagerEmulator
from provisioning.models import AccountSyncFinding, AccountSyncRun, Operation
from tests.factories import (
    OperationFactory,
    ProcessingModuleFactory,
    ServiceFactory,
    ServiceResourceFactory,
    StaffUserFactory,
    TariffPlanFactory,
)

# The seed's template (25 databases, 25 web domains) with the tariff's 10 databases on top.
AGREED_LIMITS = {"limit_db": "10", "limit_webdomains": "25"}
CHANGING = ("user.edit", "user.add.finish", "user.suspend", "user.resume", "user.delete", "usrparam", "preset.edit")


def opened(make_service, tasks, count=1, **fields):
    """Services paid for and opened the way billing opens them: real accounts with billing's marker and limits."""
    services = [make_service(**fields) for _ in range(count)]
    for service in services:
        service_mark_paid(service=service)
    tasks.run_all(limit=10 * count)
    for service in services:
        service.refresh_from_db()
        assert service.status == ServiceStatus.ACTIVE
    return services


def suspended_by_staff(service, tasks):
    service_action_request(service=service, action=PanelAction.SUSPEND, suspend_reason=SuspendReason.STAFF)
    tasks.run_all()
    service.refresh_from_db()
    assert service.status == ServiceStatus.SUSPENDED


def account(panel, login, fullname, *, active=True, limits=None, owner="root"):
    """An account put in the panel by hand (or by billing, when its full name is billing's marker)."""
    panel.app.users[login] = {
        "name": login, "password": "pw", "fullname": fullname, "preset": "Site hosting", "owner": owner,
        "active": active, "limits": dict(AGREED_LIMITS if limits is None else limits), "domain": "",
    }  # fmt: skip


def live_service(tariff, login, status=ServiceStatus.ACTIVE):
    """A service billing thinks has the account `login`, written straight to the database."""
    service = ServiceFactory(tariff=tariff, status=status, panel_username=login)
    ServiceResourceFactory(service=service, kind=ResourceKind.DATABASES, quantity=10)
    return service


def sync(module, **options):
    return sync_accounts_run(module=module, **options)


def command(*args, **options):
    """Run `sync_accounts`; returns (output, the CommandError or None)."""
    out = StringIO()
    try:
        call_command("sync_accounts", *args, stdout=out, **options)
    except CommandError as error:
        return out.getvalue(), error
    return out.getvalue(), None


def found(run):
    return sorted((f.kind, f.login, f.service_id, f.fix, f.state) for f in run.findings.all())


def details(run, kind):
    return [str(f.details) for f in run.findings.filter(kind=kind)]


def changing_calls(panel, since=0):
    """Calls that change the panel (an `.edit` without `sok` only reads a form)."""
    return [
        (func, params) for func, params in panel.app.calls[since:] if func in CHANGING and (not func.endswith(".edit") or params.get("sok"))
    ]


def form_reads(panel, since=0):
    return sorted(params["elid"] for func, params in panel.app.calls[since:] if func == "user.edit" and not params.get("sok"))


# What is found.


def test_accounts_billing_opened_agree_with_it_and_nothing_is_found(module, make_service, panel, tasks):
    first, second, third = opened(make_service, tasks, 3)
    suspended_by_staff(second, tasks)
    account(panel, "manual", "A manual account")
    calls = len(panel.app.calls)

    run = sync(module)

    assert (run.status, run.dry_run, run.accounts, run.services, run.in_flight, run.found, run.queued) == ("done", True, 4, 3, 0, 0, 0)
    assert run.forms_read == 4, "each service's account (marker, limits) and the one nobody claims (is it marked?)"
    assert form_reads(panel, since=calls) == sorted([first.panel_username, second.panel_username, third.panel_username, "manual"])
    assert [func for func, _ in panel.app.calls[calls:]].count("user") == 1
    assert changing_calls(panel, since=calls) == []
    assert (
        str(run.message)
        == "Dry run: 0 missing, 0 orphaned, 0 with another status, 0 with other limits, 0 someone else's. Fixes --apply would queue: 0."
    )
    assert run.finished_at is not None


def test_an_account_missing_in_the_panel_is_found_and_has_no_fix(module, make_service, panel, tasks):
    (service,) = opened(make_service, tasks)
    del panel.app.users[service.panel_username]
    nameless = live_service(service.tariff, "")

    run = sync(module, dry_run=False)

    assert found(run) == sorted([("missing", service.panel_username, service.pk, "", "open"), ("missing", "", nameless.pk, "", "open")])
    assert sorted(details(run, "missing")) == sorted(
        [f"The panel has no account {service.panel_username}.", "Billing has no panel login for this service."]
    )
    assert not Operation.objects.filter(service=service).exclude(action=PanelAction.OPEN).exists()


def test_an_account_marked_as_billings_with_no_live_service_is_an_orphan(module, make_service, panel, tasks):
    kept, deleted = opened(make_service, tasks, 2)
    Service.objects.filter(pk=deleted.pk).update(status=ServiceStatus.DELETED)
    account(panel, "ghost", "Service #999999")
    account(panel, "twin", f"Service #{kept.pk}")
    elsewhere = ServiceFactory(tariff__processing_module=ProcessingModuleFactory(name="Other panel"), status=ServiceStatus.ACTIVE)
    account(panel, "moved", f"Service #{elsewhere.pk}")
    account(panel, "manual", "A manual account")

    run = sync(module)

    assert found(run) == sorted(
        [
            ("orphan", deleted.panel_username, None, "", "open"),
            ("orphan", "ghost", None, "", "open"),
            ("orphan", "moved", None, "", "open"),
            ("orphan", "twin", None, "", "open"),
        ]
    )
    by_login = {f.login: str(f.details) for f in run.findings.all()}
    assert by_login[deleted.panel_username] == f"Marked as service #{deleted.pk}, which is Deleted."
    assert by_login["ghost"] == "Marked as service #999999, which does not exist."
    assert by_login["moved"] == f"Marked as service #{elsewhere.pk}, which belongs to processing module Other panel."
    assert by_login["twin"] == f"Marked as service #{kept.pk}, whose account is {kept.panel_username}: a second account of one service."


def test_the_accounts_of_another_module_on_the_same_panel_are_neither_read_nor_orphans(module, make_service, panel, tasks):
    storage = ProcessingModuleFactory(name="FTP storage", url=panel.url, username="root", password="secret", product_type="storage")
    (hosting,) = opened(make_service, tasks)
    (ftp,) = opened(make_service, tasks, tariff=TariffPlanFactory(processing_module=storage, product_type="storage"))
    calls = len(panel.app.calls)

    runs = sync(module), sync(storage)

    assert [(run.status, run.accounts, run.services, run.found) for run in runs] == [("done", 2, 1, 0), ("done", 2, 1, 0)]
    assert form_reads(panel, since=calls) == sorted([hosting.panel_username, ftp.panel_username])


def test_an_account_of_a_service_being_opened_is_not_an_orphan(module, make_service, panel, tasks):
    service = make_service()
    panel.app.faults.drop_reply_next(func="user.add.finish")
    service_mark_paid(service=service)
    tasks.run_next()  # the panel made the account, the reply was lost: the open waits for its retry
    service.refresh_from_db()
    assert (service.status, service.panel_username) == (ServiceStatus.PROCESSING, "")
    assert len(panel.app.users) == 1

    run = sync(module)

    assert (run.found, run.in_flight) == (0, 1)


@pytest.mark.parametrize(("billing", "panel_active", "fix"), [("active", False, "resume"), ("suspended", True, "suspend")])
def test_a_state_that_differs_from_billings_is_found_with_the_fix_that_makes_the_panel_match(
    module, make_service, panel, tasks, billing, panel_active, fix
):
    (service,) = opened(make_service, tasks)
    if billing == "suspended":
        suspended_by_staff(service, tasks)
    panel.app.users[service.panel_username]["active"] = panel_active

    run = sync(module)

    assert found(run) == [("status", service.panel_username, service.pk, fix, "open")]
    panel_word = "active" if panel_active else "suspended"
    assert details(run, "status") == [f"Billing says {billing.capitalize()}, the panel says {panel_word}."]
    assert run.findings.get().billing_status == billing


def test_limits_that_differ_from_the_tariff_and_resources_are_found(module, make_service, panel, tasks):
    (service,) = opened(make_service, tasks)
    limits = panel.app.users[service.panel_username]["limits"]
    limits["limit_db"], limits["limit_webdomains"] = "5", ""
    limits["limit_emails"] = "3"  # billing does not set it: not compared

    run = sync(module)

    assert found(run) == [("limits", service.panel_username, service.pk, "set_limits", "open")]
    assert details(run, "limits") == [
        "The panel's limits differ from the tariff and resources (panel → billing): limit_db 5 → 10, limit_webdomains ∞ → 25."
    ]


def test_someone_elses_account_at_a_services_login_is_found_and_never_touched(module, make_service, panel, tasks):
    (service,) = opened(make_service, tasks)
    user = panel.app.users[service.panel_username]
    user["fullname"], user["active"], user["limits"]["limit_db"] = "Jane's blog", False, "1"

    run = sync(module, dry_run=False)

    assert found(run) == [("foreign", service.panel_username, service.pk, "", "open")]
    assert details(run, "foreign") == [
        f"The account {service.panel_username} is not marked as this service's: its full name is Jane's blog."
    ]
    assert not Operation.objects.exclude(action=PanelAction.OPEN).exists()


def test_a_service_with_an_operation_on_its_way_is_left_to_it(module, make_service, panel, tasks):
    (service,) = opened(make_service, tasks)
    panel.app.users[service.panel_username]["active"] = False
    OperationFactory(service=service, action=PanelAction.SUSPEND, status=OperationStatus.QUEUED)

    run = sync(module, dry_run=False)

    assert (run.services, run.in_flight, run.found, run.queued) == (0, 1, 0, 0)


# Panels that do not show what the document leaves open.


def test_without_full_names_in_the_form_billings_accounts_are_told_by_their_owner(module, make_service, panel, tasks):
    ours, theirs = opened(make_service, tasks, 2)
    panel.app.users[theirs.panel_username]["owner"] = "reseller1"
    account(panel, "ghost", "Service #999999")
    panel.app.form_active = False

    run = sync(module)

    assert found(run) == [("foreign", theirs.panel_username, theirs.pk, "", "open")]
    assert details(run, "foreign") == [f"The account {theirs.panel_username} belongs to reseller1, not to billing's login root."]
    assert run.status == "done"
    assert str(run.message).endswith("neither full name nor owner of 1 accounts: whether they are billing's was not checked."), "the ghost"
    assert ours.panel_username not in {f.login for f in run.findings.all()}


def test_on_lite_without_full_names_nothing_is_claimed_and_the_run_says_what_it_could_not_check(db):
    app = ISPmanagerEmulator(edition="lite", form_active=False)
    app.add_preset("Site hosting", limit_db=25, limit_webdomains=25)
    with EmulatorServer(app) as lite:
        module = ProcessingModuleFactory(url=lite.url, username="root", password="secret")
        service = live_service(ServiceFactory(tariff__processing_module=module).tariff, "user1")
        app.users["user1"] = {
            "name": "user1", "password": "pw", "fullname": f"Service #{service.pk}", "preset": "Site hosting", "owner": "root",
            "active": True, "limits": dict(AGREED_LIMITS), "domain": "",
        }  # fmt: skip
        app.users["ghost"] = app.users["user1"] | {"name": "ghost", "fullname": "Service #999999"}

        run = sync(module)

    assert (run.status, run.found) == ("done", 0)
    assert str(run.message).endswith(
        "The panel shows neither full name nor owner of 2 accounts: whether they are billing's was not checked."
    )


# What is read, and what a cut list does.


def test_list_only_reads_forms_only_where_the_state_differs(module, make_service, panel, tasks):
    agreed, differs = opened(make_service, tasks, 2)
    panel.app.users[differs.panel_username]["active"] = False
    panel.app.users[agreed.panel_username]["limits"]["limit_db"] = "1"
    account(panel, "ghost", "Service #999999")
    calls = len(panel.app.calls)

    run = sync(module, list_only=True)

    assert found(run) == [("status", differs.panel_username, differs.pk, "resume", "open")]
    assert form_reads(panel, since=calls) == [differs.panel_username]
    assert run.forms_read == 1
    assert "List only: limits, markers and orphans were not checked." in str(run.message)


def test_a_paged_list_is_read_page_by_page(module, make_service, panel, tasks):
    services = opened(make_service, tasks, 5)
    panel.app.users[services[4].panel_username]["active"] = False
    panel.app.page_size = 2

    run = sync(module)

    assert (run.status, run.accounts, run.services) == ("done", 5, 5)
    assert found(run) == [("status", services[4].panel_username, services[4].pk, "resume", "open")]
    assert [params.get("p_num") for func, params in panel.app.calls if func == "user"][-3:] == [None, "2", "3"]


@pytest.mark.parametrize(
    ("fault", "said"),
    [
        ("short-pages", "is incomplete: 1 rows arrived of 5 announced"),
        ("cut", "cut off"),
        ("down", "cannot connect"),
        ("form-fails-twice", "HTTP 503"),
    ],
)
def test_a_list_or_form_not_read_completely_fails_the_run_and_changes_nothing(module, make_service, panel, tasks, fault, said):
    services = opened(make_service, tasks, 5)
    panel.app.users[services[0].panel_username]["active"] = False
    before = copy.deepcopy(panel.app.users)
    calls = len(panel.app.calls)
    if fault == "short-pages":
        panel.app.page_size, panel.app.short_pages = 2, True
    elif fault == "cut":
        panel.app.faults.cut_reply_next(func="user")
    elif fault == "down":
        panel.app.faults.down = True
    else:
        panel.app.faults.fail_next(100, func="user.edit")

    out, error = command("--apply")

    assert error is not None and error.returncode == 1
    assert module.name in str(error)
    run = AccountSyncRun.objects.get()
    assert run.status == "failed"
    assert str(run.message).startswith(
        "Accounts could not be read one by one" if fault == "form-fails-twice" else "The panel's user list could not be read completely"
    )
    assert said in str(run.message)
    assert str(run.message) in out
    assert not AccountSyncFinding.objects.exists()
    assert not Operation.objects.exclude(action=PanelAction.OPEN).exists()
    assert panel.app.users == before
    assert changing_calls(panel, since=calls) == []


class UserListOfAnotherShape:
    """Serve the emulator, but answer its user list with rows that are not objects (a panel nobody documented)."""

    def __init__(self, app):
        self.app, self.path = app, app.path

    def __call__(self, environ, start_response):
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        if dict(parse_qsl(body.decode())).get("func") != "user":
            environ["wsgi.input"] = io.BytesIO(body)
            return self.app(environ, start_response)
        reply = json.dumps({"doc": {"elem": ["alice", "bob"]}}).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(reply)))])
        return [reply]


def test_a_user_list_of_another_shape_fails_the_run_and_the_command_goes_on_to_the_next_module(module, make_service, panel, tasks):
    opened(make_service, tasks)
    with EmulatorServer(UserListOfAnotherShape(panel.app)) as odd:
        ProcessingModuleFactory(name="Odd panel", url=odd.url, username="root", password="secret")

        out, error = command()

    assert str(error) == "sync_accounts did not complete for: Odd panel."
    runs = {run.module.name: run for run in AccountSyncRun.objects.select_related("module")}
    assert (runs["Odd panel"].status, runs[module.name].status) == ("failed", "done")
    assert f"Odd panel (accounts in the panel: 0, services compared: 0, read one by one: 0): Failed. {runs['Odd panel'].message}" in out
    assert not AccountSyncFinding.objects.filter(run=runs["Odd panel"]).exists()


def test_a_form_that_fails_once_is_read_again(module, make_service, panel, tasks):
    opened(make_service, tasks, 2)
    panel.app.faults.fail_next(func="user.edit")

    run = sync(module)

    assert (run.status, run.found, run.forms_read) == ("done", 0, 2)


# Dry run and --apply.


@pytest.fixture
def every_kind(module, make_service, panel, tasks):
    """One service per finding kind, and an account marked as a deleted service's."""
    stopped, suspended, limited, taken, gone, deleted = opened(make_service, tasks, 6)
    suspended_by_staff(suspended, tasks)
    panel.app.users[stopped.panel_username]["active"] = False
    panel.app.users[suspended.panel_username]["active"] = True
    panel.app.users[limited.panel_username]["limits"]["limit_db"] = "2"
    panel.app.users[taken.panel_username] |= {"fullname": "Jane's blog", "active": False}
    del panel.app.users[gone.panel_username]
    Service.objects.filter(pk=deleted.pk).update(status=ServiceStatus.DELETED)
    return {"stopped": stopped, "suspended": suspended, "limited": limited, "taken": taken, "gone": gone, "deleted": deleted}


def test_a_dry_run_prints_and_records_every_finding_and_changes_nothing(module, panel, every_kind):
    before = copy.deepcopy(panel.app.users)
    calls = len(panel.app.calls)

    out, error = command()

    assert error is None
    assert panel.app.users == before
    assert changing_calls(panel, since=calls) == []
    assert not Operation.objects.exclude(action__in=[PanelAction.OPEN, PanelAction.SUSPEND]).exists()
    assert Operation.objects.count() == 7, "six opens and one suspension, nothing more"
    run = AccountSyncRun.objects.get()
    assert (run.status, run.dry_run, run.found, run.queued) == ("done", True, 6, 0)
    summary = "Dry run: 1 missing, 1 orphaned, 2 with another status, 1 with other limits, 1 someone else's. Fixes --apply would queue: 3."
    assert str(run.message) == summary
    assert f"{module.name} (accounts in the panel: 5, services compared: 5, read one by one: 5): Done. {summary}" in out
    stopped = every_kind["stopped"]
    line = f"  Status differs: {stopped.panel_username} (service #{stopped.pk}). Billing says Active, the panel says suspended."
    assert f"{line} Fix: Resume." in out
    assert f"  Account missing in the panel: {every_kind['gone'].panel_username} (service #{every_kind['gone'].pk})." in out
    assert f"  Billing's account with no live service: {every_kind['deleted'].panel_username} (no service)." in out


def test_apply_queues_only_resume_suspend_and_set_limits_and_never_deletes(module, panel, tasks, every_kind):
    _, error = command("--apply")

    assert error is None
    run = AccountSyncRun.objects.get()
    assert (run.dry_run, run.found, run.queued) == (False, 6, 3)
    assert str(run.message).endswith("Fixes queued: 3 of 3.")
    queued = {op.service_id: op.action for op in Operation.objects.filter(status=OperationStatus.QUEUED)}
    assert queued == {
        every_kind["stopped"].pk: PanelAction.RESUME,
        every_kind["suspended"].pk: PanelAction.SUSPEND,
        every_kind["limited"].pk: PanelAction.SET_LIMITS,
    }
    assert set(run.findings.filter(state="queued").values_list("operation__action", flat=True)) == {"resume", "suspend", "set_limits"}
    calls = len(panel.app.calls)

    tasks.run_all()

    users = panel.app.users
    assert users[every_kind["stopped"].panel_username]["active"] is True
    assert users[every_kind["suspended"].panel_username]["active"] is False
    assert users[every_kind["limited"].panel_username]["limits"]["limit_db"] == "10"
    assert (users[every_kind["taken"].panel_username]["fullname"], users[every_kind["taken"].panel_username]["active"]) == (
        "Jane's blog",
        False,
    )
    assert every_kind["deleted"].panel_username in users, "an orphan is never deleted"
    assert every_kind["gone"].panel_username not in users, "a missing account is not created"
    assert {func for func, _ in changing_calls(panel, since=calls)} <= {"user.resume", "user.suspend", "user.edit", "preset.edit"}
    suspended = Service.objects.get(pk=every_kind["suspended"].pk)
    assert (suspended.status, suspended.suspend_reason) == (ServiceStatus.SUSPENDED, SuspendReason.STAFF)

    again = sync(module, dry_run=False)

    assert sorted(f.kind for f in again.findings.all()) == ["foreign", "missing", "orphan"]
    assert again.queued == 0


def test_apply_does_not_queue_a_fix_for_a_service_that_changed_since_it_was_read(module, make_service, panel, tasks):
    (service,) = opened(make_service, tasks)
    panel.app.users[service.panel_username]["active"] = False
    dry = sync(module)
    Service.objects.filter(pk=service.pk).update(status=ServiceStatus.SUSPENDED, suspend_reason=SuspendReason.STAFF)

    with pytest.raises(ValidationError, match=f"Not queued: service #{service.pk} is Suspended now, not Active as the run found it."):
        finding_fix_queue(finding=dry.findings.get(), by=StaffUserFactory())

    finding = dry.findings.get()
    assert (finding.state, str(finding.note)) == (
        "open",
        f"Not queued: service #{service.pk} is Suspended now, not Active as the run found it.",
    )
    assert not Operation.objects.exclude(action=PanelAction.OPEN).exists()


# Staff's actions.


def test_staff_queue_the_fix_of_the_latest_runs_finding_and_not_of_an_earlier_one(module, make_service, panel, tasks):
    (service,) = opened(make_service, tasks)
    panel.app.users[service.panel_username]["active"] = False
    earlier, latest = sync(module), sync(module)
    staff = StaffUserFactory()

    with pytest.raises(ValidationError, match="A later run of this module exists"):
        finding_fix_queue(finding=earlier.findings.get(), by=staff)
    finding = finding_fix_queue(finding=latest.findings.get(), by=staff)

    operation = Operation.objects.get(action=PanelAction.RESUME)
    assert (finding.state, finding.operation, finding.resolved_by) == ("queued", operation, staff)
    assert (operation.requested_by, str(operation.reason)) == (
        staff,
        f"the panel differs from billing (account sync finding #{finding.pk})",
    )
    tasks.run_all()
    assert panel.app.users[service.panel_username]["active"] is True


def test_a_dismissed_difference_stays_dismissed_while_it_persists_and_is_never_applied(module, make_service, panel, tasks):
    (service,) = opened(make_service, tasks)
    panel.app.users[service.panel_username]["active"] = False  # staff suspended it in the panel on purpose
    staff = StaffUserFactory()
    finding_dismiss(finding=sync(module).findings.get(), by=staff)

    applied = sync(module, dry_run=False)

    assert found(applied) == [("status", service.panel_username, service.pk, "resume", "dismissed")]
    assert str(applied.findings.get().note) == "dismissed earlier: the same difference as then"
    assert applied.queued == 0
    assert panel.app.users[service.panel_username]["active"] is False
    panel.app.users[service.panel_username]["limits"]["limit_db"] = "1"  # a new difference is not covered by the dismissal
    assert [f.state for f in sync(module).findings.order_by("kind")] == ["open", "dismissed"]


def test_the_admin_lists_runs_and_findings_and_staff_act_on_findings(admin_client, module, make_service, panel, tasks):
    stopped, limited = opened(make_service, tasks, 2)
    panel.app.users[stopped.panel_username]["active"] = False
    panel.app.users[limited.panel_username]["limits"]["limit_db"] = "3"
    run = sync(module)
    url = reverse("admin:provisioning_accountsyncfinding_changelist")

    runs = admin_client.get(reverse("admin:provisioning_accountsyncrun_changelist")).content.decode()
    findings = admin_client.get(url + f"?run__id__exact={run.pk}").content.decode()
    status, limits = run.findings.get(kind="status"), run.findings.get(kind="limits")
    queued = admin_client.post(url, {"action": "queue_fix", "_selected_action": [status.pk]}, follow=True).content.decode()
    dismissed = admin_client.post(url, {"action": "dismiss", "_selected_action": [limits.pk]}, follow=True).content.decode()
    again = admin_client.post(url, {"action": "dismiss", "_selected_action": [limits.pk]}, follow=True).content.decode()

    assert html.escape(str(run.message)) in runs
    assert f"?run__id__exact={run.pk}" in runs
    assert "Billing says Active, the panel says suspended." in findings
    assert "1 fix queued." in queued
    assert Operation.objects.filter(service=stopped, action=PanelAction.RESUME).exists()
    assert "1 finding dismissed." in dismissed
    assert "Only an open finding can be dismissed: this one is “Dismissed”." in again
    assert not Operation.objects.filter(service=limited, action=PanelAction.SET_LIMITS).exists()
    assert admin_client.get(reverse("admin:provisioning_accountsyncfinding_change", args=[status.pk])).status_code == 200
    assert admin_client.get(reverse("admin:provisioning_accountsyncfinding_add")).status_code == 403


@pytest.mark.parametrize(
    ("changelist", "most"),
    [("admin:provisioning_accountsyncrun_changelist", 8), ("admin:provisioning_accountsyncfinding_changelist", 6)],
    ids=["runs-with-dates", "findings"],
)
def test_the_admin_lists_run_a_fixed_number_of_queries(admin_client, module, make_service, panel, tasks, changelist, most):
    for service in opened(make_service, tasks, 5):
        panel.app.users[service.panel_username]["active"] = False

    def page_queries():
        with CaptureQueriesContext(connection) as queries:
            assert admin_client.get(reverse(changelist)).status_code == 200
        return len(queries)

    sync(module)
    one = page_queries()
    for _ in range(4):
        sync(module)
    many = page_queries()

    assert one == many <= most


# Scale: the queries do not grow with the accounts.


def many_accounts(panel, tariff, count, start=0):
    for number in range(start, start + count):
        service = live_service(tariff, f"bulk{number}")
        account(panel, f"bulk{number}", f"Service #{service.pk}")


def queries_of_a_dry_run_and_an_apply(module):
    with CaptureQueriesContext(connection) as dry:
        assert sync(module).found == 3
    with CaptureQueriesContext(connection) as applied:
        assert sync(module, dry_run=False).queued == 2
    Operation.objects.all().delete()  # queued, never run: the next run compares these services again
    return len(dry), len(applied)


def test_the_queries_of_a_run_do_not_grow_with_the_accounts(module, tariff, panel):
    many_accounts(panel, tariff, 50)
    for login in ("bulk3", "bulk7"):
        panel.app.users[login]["active"] = False  # two fixes to queue at either size
    account(panel, "ghost", "Service #999999")  # and an orphan
    small = queries_of_a_dry_run_and_an_apply(module)
    many_accounts(panel, tariff, 450, start=50)

    large = queries_of_a_dry_run_and_an_apply(module)

    assert small == large


# Runs at once and the command line.


@pytest.mark.parametrize(("age", "busy"), [(timedelta(minutes=5), True), (timedelta(hours=7), False)])
def test_a_running_sync_of_a_module_blocks_another_until_it_is_stale(module, make_service, panel, tasks, age, busy):
    opened(make_service, tasks)
    running = AccountSyncRun.objects.create(module=module)
    AccountSyncRun.objects.filter(pk=running.pk).update(started_at=timezone.now() - age)

    if busy:
        with pytest.raises(SyncBusy):
            sync(module)
        out, error = command()
        assert error is None
        assert f"{module.name}: skipped, an account sync of {module.name} is already running." in out
        assert AccountSyncRun.objects.get().status == "running"
    else:
        assert sync(module).status == "done"
        running.refresh_from_db()
        assert (running.status, str(running.message)) == ("failed", "The process running it stopped.")


def test_the_command_refuses_an_unknown_module_name_with_exit_code_1(module):
    _, error = command(module.name, "Nope", "Neither")

    assert str(error) == "No ISPmanager processing module named Neither, Nope."
    assert error.returncode == 1
    assert not AccountSyncRun.objects.exists()


def test_the_command_refuses_dry_run_and_apply_together(module):
    _, error = command("--dry-run", "--apply")

    assert "not allowed with argument" in str(error)
    assert not AccountSyncRun.objects.exists()


def test_the_command_compares_the_named_or_every_enabled_module(module, make_service, panel, tasks):
    opened(make_service, tasks)
    off = ProcessingModuleFactory(name="Retired panel", url=panel.url, username="root", password="secret", is_enabled=False)

    out, error = command()
    named, named_error = command("Retired panel")

    assert (error, named_error) == (None, None)
    assert "Retired panel: skipped, the module is disabled (name it to compare it anyway)." in out
    assert list(AccountSyncRun.objects.order_by("pk").values_list("module", flat=True)) == [module.pk, off.pk]
    assert "Retired panel (accounts in the panel: 1, services compared: 0, read one by one: 0): Done. Dry run: 0 missing," in named


def test_cron_runs_it_daily_as_a_dry_run_unless_apply_is_set():
    from django.conf import settings

    assert ("45 3 * * *", "django.core.management.call_command", ["sync_accounts", "--dry-run"]) in settings.CRONJOBS
