"""What docs/ipmanager-api.md leaves unconfirmed: billing against the emulator switched to each alternative.

No `$level` in whoami (nor, on one panel, anywhere), no `ippool`, no `actionlist`, no `iptype`, the
release under another name, paged and cut lists, and allocations whose reply names no address.
The seed's panel (`ipmanager`) is switched while it runs; a variant no switch gives is a small
subclass of the emulator, served on its own port with the seed's network and user.
"""

import contextlib
import copy

import pytest

from billing.choices import PanelAction, ServiceStatus
from billing.services import service_action_request
from ipam_sync.ipmanager.client import AllocationUnconfirmed, IPmanagerClient
from ipam_sync.ipmanager.emulator import IPmanagerEmulator
from ipam_sync.models import IPAssignment, SyncChange
from ipam_sync.services import integration_check_connection, note_for
from ipam_sync.sync import sync_ips_run
from provisioning.choices import OperationStatus
from provisioning.coremanager.client import LEVEL_ADMIN, LEVEL_USER
from provisioning.coremanager.emulator import EmulatorServer, ok
from provisioning.coremanager.errors import NoSuchFunction, TransientError
from provisioning.models import Operation
from tests.ipam_sync.test_dedicated_ips import live_addresses, ours_in_ipmanager, pay

TIMEOUT = (2, 5)
NOTE = note_for(42)
# Every function billing calls that docs/ipmanager-api.md lists (`auth` is the core's own).
DOCUMENTED = {"ip", "ip.edit", "ip.delete", "iptype", "whoami", "actionlist", "auth"}


def login(server, username="billing", password="secret", **overrides) -> IPmanagerClient:
    return IPmanagerClient(server.url, username, password, timeout=TIMEOUT, function_overrides=overrides or None)


def allocate(client, **kwargs) -> str:
    return client.allocate(**{"iptype": "alias", "domain": "", "note": NOTE} | kwargs)


def check(integration):
    result = integration_check_connection(integration=integration, save=False)
    return result, str(result.message)


def sync(integration):
    return sync_ips_run(integration=integration, max_release=50)


def ours(ipm, address, service_id=999):
    ipm.take(address, owner="billing", note=note_for(service_id))


def changing_calls(ipm):
    return [func for func, params in ipm.calls if func in ("ip.delete", "ip.free") or (func == "ip.edit" and params.get("sok"))]


def with_admin(integration, username="admin", password="secret"):
    integration.admin_username, integration.admin_password = username, password
    integration.save()
    return integration


def opened(service, tasks):
    """Pay the service and run its open; the open operation, reloaded."""
    operation = pay(service)
    tasks.run_all()
    operation.refresh_from_db()
    service.refresh_from_db()
    return operation


@pytest.fixture
def serve(integration):
    """Serve an emulator variant with the seed's network and user, and point the integration at it."""
    with contextlib.ExitStack() as servers:

        def start(app: IPmanagerEmulator) -> IPmanagerEmulator:
            app.add_network("133.31.223.0/24")
            app.add_user("billing", "secret", pools=["133.31.223.0-133.31.223.128"], groups=["alias"])
            integration.url = servers.enter_context(EmulatorServer(app)).url
            integration.save()
            return app

        yield start


class NoLevelAnywhere(IPmanagerEmulator):
    """A panel whose `func=auth` reply carries no `$level` either (run it with whoami_level=False)."""

    def _auth(self, params, address):
        doc = super()._auth(params, address)
        del doc["auth"]["$level"]
        return doc


class TakesNothing(IPmanagerEmulator):
    """Answers an allocation with a bare ok and takes no address."""

    def ip_edit(self, caller, params):
        if "elid" not in params and params.get("sok"):
            return ok()
        return super().ip_edit(caller, params)


class NamesItsRow(IPmanagerEmulator):
    """Takes the address but answers `doc.id` with a key of its own, not the address."""

    def ip_edit(self, caller, params):
        doc = super().ip_edit(caller, params)
        if "elid" not in params:
            doc["id"] = {"$": "row17"}
        return doc


class ListFailsAfterAllocating(IPmanagerEmulator):
    """Answers allocations without an id; the first list after each allocation fails (HTTP 503)."""

    def ip_edit(self, caller, params):
        doc = super().ip_edit(caller, params)
        if "elid" not in params:
            self.faults.fail_next(func="ip")
        return doc


# No $level in whoami.


def test_without_a_level_in_whoami_the_callers_level_comes_from_auth(ipmanager, ipm):
    ipm.whoami_level = False

    assert login(ipmanager).whoami() == ("billing", None)
    assert login(ipmanager).caller() == ("billing", LEVEL_USER)
    assert login(ipmanager, "admin", "secret").caller() == ("admin", LEVEL_ADMIN)


def test_without_a_level_in_whoami_the_check_accepts_the_administrator(integration, ipm):
    ipm.whoami_level = False

    result, message = check(with_admin(integration))

    assert (result.ok, result.warning, result.blocking) == (True, False, False)
    assert message == "User billing may take addresses in the groups: alias. Synchronization runs as administrator admin."


def test_without_a_level_in_whoami_the_check_still_refuses_a_plain_user_as_administrator(integration, ipm):
    ipm.whoami_level = False
    ipm.add_user("billing2", "pw2")

    result, message = check(with_admin(integration, "billing2", "pw2"))

    assert (result.ok, result.blocking) == (False, True)
    assert message.endswith("billing2 is not an IPmanager administrator (level 16, 29 needed).")


def test_a_panel_that_tells_no_level_leaves_the_administrator_unverified_not_refused(serve, integration):
    serve(NoLevelAnywhere(admins={"admin": "secret"}, whoami_level=False))

    result, message = check(with_admin(integration))

    assert (result.ok, result.warning, result.blocking) == (True, True, False)
    assert message == (
        "User billing may take addresses in the groups: alias. Synchronization runs as admin; could not verify "
        "that it is an administrator: the panel tells no level (whoami, auth)."
    )


def test_a_panel_that_tells_no_level_still_refuses_a_wrong_administrator_password(serve, integration):
    serve(NoLevelAnywhere(admins={"admin": "secret"}, whoami_level=False))

    result, message = check(with_admin(integration, "admin", "wrong"))

    assert (result.ok, result.blocking) == (False, True)
    assert "Administrator login: wrong username or password" in message


# No ippool (the document has no such function), no actionlist: nothing billing does needs them.


@pytest.mark.parametrize("missing", [set(), {"actionlist"}], ids=["every-documented-function", "no-actionlist"])
def test_check_open_sync_and_close_call_only_documented_functions_never_ippool(integration, ipm, make_service, panel, tasks, missing):
    ipm.missing_functions = missing
    with_admin(integration)

    result, _ = check(integration)
    service = make_service(ips=2)
    operation = opened(service, tasks)
    run = sync(integration)
    service_action_request(service=service, action=PanelAction.CLOSE)
    tasks.run_all()

    assert (result.ok, result.warning) == (True, False)
    assert (operation.status, service.status) == (OperationStatus.DONE, ServiceStatus.ACTIVE)
    assert (run.status, run.released, run.allocated, run.failed) == ("done", 0, 0, 0)
    assert ipm.allocated == {}
    assert {func for func, _ in ipm.calls} <= DOCUMENTED - {"actionlist"}


# No iptype.


@pytest.mark.parametrize(
    ("administrator", "ok", "blocking", "then"),
    [
        (None, True, False, ""),
        (("admin", "secret"), True, False, " Synchronization runs as administrator admin."),
        (("admin", "wrong"), False, True, " Administrator login: wrong username or password"),
        (("billing2", "pw2"), False, True, " billing2 is not an IPmanager administrator (level 16, 29 needed)."),
    ],
    ids=["no-administrator", "administrator", "wrong-administrator-password", "administrator-is-a-plain-user"],
)
def test_without_iptype_the_groups_are_unverified_and_the_administrator_is_still_checked(
    integration, ipm, administrator, ok, blocking, then
):
    ipm.missing_functions = {"iptype"}
    ipm.add_user("billing2", "pw2")
    if administrator:
        with_admin(integration, *administrator)

    result, message = check(integration)

    assert (result.ok, result.warning, result.blocking) == (ok, True, blocking)
    assert message.startswith(
        "Logged in as billing. Could not verify the IP groups: the panel has no function iptype (a panel that hands out "
        "no addresses is a valid dummy integration, fine when dedicated IPs are not sold)." + then
    )


def test_groups_under_another_name_are_read_with_the_override(integration, ipm):
    ipm.rename = {"iptype": "ip.group"}
    integration.function_names = {"groups": "ip.group"}

    result, message = check(integration)

    assert (result.ok, result.warning) == (True, False)
    assert message == "User billing may take addresses in the groups: alias."


# The release under another name.


def test_a_renamed_release_fails_with_the_default_name_and_works_with_the_override(ipmanager, ipm):
    ipm.rename = {"ip.delete": "ip.free"}
    ip = allocate(login(ipmanager))

    with pytest.raises(NoSuchFunction):
        login(ipmanager).release(ip)
    assert [entry["ip"] for entry in ipm.allocated.values()] == [ip]

    login(ipmanager, release="ip.free").release(ip)
    assert ipm.allocated == {}
    assert ipm.calls[-1] == ("ip.free", {"elid": ip})


def test_closing_a_service_releases_its_addresses_under_the_overridden_name(integration, ipm, make_service, panel, tasks):
    ipm.rename = {"ip.delete": "ip.free"}
    integration.function_names = {"release": "ip.free"}
    integration.save()
    service = make_service(ips=2)
    opened(service, tasks)
    held = live_addresses(service)

    service_action_request(service=service, action=PanelAction.CLOSE)
    tasks.run_all()

    close = Operation.objects.get(service=service, action=PanelAction.CLOSE)
    assert close.status == OperationStatus.DONE
    assert ipm.allocated == {}
    assert sorted(params["elid"] for func, params in ipm.calls if func == "ip.free") == held
    assert not IPAssignment.objects.filter(released_at__isnull=True).exists()


def test_sync_releases_under_the_overridden_name(integration, ipm):
    ipm.rename = {"ip.delete": "ip.free"}
    integration.function_names = {"release": "ip.free"}
    integration.save()
    ours(ipm, "133.31.223.5")

    run = sync(integration)

    assert (run.status, run.released, run.failed) == ("done", 1, 0)
    assert ipm.allocated == {}


# Paged and cut lists.


def test_a_paged_list_is_read_page_by_page_to_the_end(ipmanager, ipm):
    ipm.page_size = 2
    client = login(ipmanager)
    mine = [allocate(client) for _ in range(5)]

    assert [address.ip for address in client.addresses()] == mine
    assert [params.get("p_num") for func, params in ipm.calls if func == "ip"] == [None, "2", "3"]
    ipm.page_size = 1
    assert login(ipmanager, "admin", "secret").iptypes() == ["alias", "public"]


def test_sync_plans_on_every_page_of_the_list(integration, ipm, live_assignment):
    ipm.page_size = 2
    for n in range(1, 6):
        ours(ipm, f"133.31.223.{n}")
    live_assignment("133.31.223.3")

    run = sync(integration)

    assert (run.status, run.listed, run.released, run.allocated) == ("done", 5, 4, 0)
    assert [entry["ip"] for entry in ipm.allocated.values()] == ["133.31.223.3"]


def test_a_cut_list_aborts_sync_before_it_plans_anything(integration, ipm, live_assignment):
    ipm.page_size, ipm.short_pages = 2, True
    for n in range(1, 6):
        ours(ipm, f"133.31.223.{n}")
    live_assignment("133.31.223.9")
    before = copy.deepcopy(ipm.allocated)

    run = sync(integration)

    assert run.status == "failed"
    assert str(run.message).startswith("The IPmanager list could not be read completely, nothing was changed")
    assert "incomplete" in str(run.message)
    assert (run.listed, run.released, run.allocated) == (0, 0, 0)
    assert not SyncChange.objects.exists()
    assert ipm.allocated == before
    assert changing_calls(ipm) == []


def test_an_open_never_allocates_on_a_list_it_could_not_read_whole(ipm, make_service, panel, tasks):
    ipm.page_size, ipm.short_pages = 2, True
    for n in range(1, 4):
        ipm.take(f"133.31.223.{n}", owner="billing", note="taken by hand")
    service = make_service(ips=1)

    operation = opened(service, tasks)

    assert operation.status == OperationStatus.FAILED
    assert "incomplete" in operation.last_error
    assert len(ipm.allocated) == 3
    assert changing_calls(ipm) == []
    assert panel.app.users == {}
    assert not IPAssignment.objects.exists()


# Allocations whose reply names no address.


def test_an_allocation_answered_without_id_is_unconfirmed_yet_took_its_address(ipmanager, ipm):
    ipm.allocate_reply_id = False

    with pytest.raises(AllocationUnconfirmed) as unconfirmed:
        allocate(login(ipmanager), domain="shop.example.com.")

    assert isinstance(unconfirmed.value, TransientError)
    assert [(entry["note"], entry["domain"]) for entry in ipm.allocated.values()] == [(NOTE, "shop.example.com.")]


def test_an_allocation_of_a_given_address_answered_without_id_is_confirmed_by_reading_it_back(ipmanager, ipm):
    ipm.allocate_reply_id = False

    assert allocate(login(ipmanager), ip="133.31.223.50") == "133.31.223.50"
    assert ipm.calls[-1] == ("ip.edit", {"elid": "133.31.223.50"})


@pytest.mark.parametrize("ips", [1, 2])
def test_an_open_on_a_panel_answering_allocations_without_id_adopts_them_by_their_note(make_service, ipm, panel, tasks, ips):
    ipm.allocate_reply_id = False
    service = make_service(ips=ips)

    operation = opened(service, tasks)

    assert (operation.status, operation.attempts, service.status) == (OperationStatus.DONE, 1, ServiceStatus.ACTIVE)
    assert len(live_addresses(service)) == ips
    assert live_addresses(service) == ours_in_ipmanager(ipm, service)
    assert sorted(panel.app.ip_addresses) == live_addresses(service)
    assert IPAssignment.objects.count() == ips


def test_when_the_note_search_after_an_answer_without_id_fails_the_retry_adopts_the_address(serve, make_service, panel, tasks):
    app = serve(ListFailsAfterAllocating(allocate_reply_id=False))
    service = make_service(ips=1)

    operation = opened(service, tasks)

    assert (operation.status, operation.attempts, service.status) == (OperationStatus.DONE, 2, ServiceStatus.ACTIVE)
    assert len(app.allocated) == 1
    assert live_addresses(service) == ours_in_ipmanager(app, service)
    assert sorted(panel.app.ip_addresses) == live_addresses(service)


def test_an_allocation_answered_with_an_id_that_is_no_address_is_adopted_by_its_note(serve, make_service, panel, tasks):
    app = serve(NamesItsRow())
    service = make_service(ips=1)

    operation = opened(service, tasks)

    assert (operation.status, operation.attempts) == (OperationStatus.DONE, 1)
    assert live_addresses(service) == ours_in_ipmanager(app, service) == ["133.31.223.1"]
    assert sorted(panel.app.ip_addresses) == ["133.31.223.1"]


def test_an_allocation_that_names_no_address_and_took_none_stops_before_any_account(serve, make_service, panel, tasks):
    app = serve(TakesNothing())
    service = make_service(ips=1)

    operation = opened(service, tasks)

    assert (operation.status, operation.attempts, service.status) == (OperationStatus.FAILED, 1, ServiceStatus.FAILED)
    said = f"IPmanager's ip.edit named no address in its reply (id: -), and no address in IPmanager carries the note {note_for(service.pk)}"
    assert said in operation.last_error
    assert not IPAssignment.objects.exists()
    assert app.allocated == {}
    assert panel.app.users == {}
    assert [func for func, _ in panel.app.calls if func.startswith("ipaddr")] == []


def test_sync_marks_an_address_allocated_on_a_panel_that_answers_without_id(integration, ipm, live_assignment):
    ipm.allocate_reply_id = False
    held = live_assignment("133.31.223.9")

    run = sync(integration)

    assert (run.status, run.allocated, run.failed) == ("done", 1, 0)
    assert [(entry["ip"], entry["note"]) for entry in ipm.allocated.values()] == [("133.31.223.9", note_for(held.service_id))]


def test_an_address_parameter_the_panel_ignores_never_counts_another_address_as_the_one_asked_for(integration, ipm, live_assignment):
    integration.function_names = {"allocate_address": "address"}
    integration.save()
    live_assignment("133.31.223.9")

    run = sync(integration)

    change = SyncChange.objects.get()
    assert (run.allocated, run.failed, change.action, change.result) == (0, 1, "allocate", "failed")
    assert str(change.reason) == (
        "IPmanager gave 133.31.223.1 when asked for 133.31.223.9: check the name of the allocation's address parameter (address)"
    )
