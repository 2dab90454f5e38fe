"""Suspend, resume, resources, password, sync and delete: the panel first, billing after it confirmed."""

import pytest
from django.core.exceptions import ValidationError

from billing.choices import PanelAction, ResourceKind, ServiceStatus, SuspendReason
from billing.models import ServiceResource
from billing.services import service_action_request, service_mark_paid
from ipam_sync.models import IPAssignment
from ipam_sync.services import note_for
from provisioning.choices import OperationStatus
from provisioning.coremanager.emulator import EmulatorServer
from provisioning.ispmanager.emulator import ISPmanagerEmulator
from provisioning.models import Operation
from provisioning.services import operation_retry
from tests.factories import IPmanagerIntegrationFactory, ProcessingModuleFactory, UserFactory


@pytest.fixture
def active_service(make_service, panel, tasks):
    service = make_service()
    service_mark_paid(service=service)
    tasks.run_all()
    service.refresh_from_db()
    assert service.status == ServiceStatus.ACTIVE
    return service


def ask(service, action, **options):
    service_action_request(service=service, action=action, by=options.pop("by", None), **options)
    service.refresh_from_db()


def test_suspend_changes_billing_only_after_the_panel_suspended_the_account(active_service, panel, tasks):
    staff = UserFactory()
    ask(active_service, PanelAction.SUSPEND, by=staff, reason="abuse report", suspend_reason=SuspendReason.STAFF)

    assert active_service.status == ServiceStatus.ACTIVE
    assert panel.app.users[active_service.panel_username]["active"] is True

    tasks.run_all()

    active_service.refresh_from_db()
    assert (active_service.status, active_service.suspend_reason) == (ServiceStatus.SUSPENDED, SuspendReason.STAFF)
    assert panel.app.users[active_service.panel_username]["active"] is False
    change = active_service.status_changes.last()
    assert (change.changed_by, change.reason) == (staff, "abuse report")


def test_resume_reactivates_the_account_then_the_service(active_service, panel, tasks):
    ask(active_service, PanelAction.SUSPEND, suspend_reason=SuspendReason.STAFF)
    tasks.run_all()

    ask(active_service, PanelAction.RESUME)
    assert active_service.status == ServiceStatus.SUSPENDED
    tasks.run_all()

    active_service.refresh_from_db()
    assert (active_service.status, active_service.suspend_reason) == (ServiceStatus.ACTIVE, "")
    assert panel.app.users[active_service.panel_username]["active"] is True


def test_a_suspend_the_panel_does_not_confirm_leaves_the_service_active(active_service, panel, tasks, settings):
    settings.PROVISIONING_MAX_ATTEMPTS = 2
    panel.app.faults.down = True

    ask(active_service, PanelAction.SUSPEND)
    tasks.run_all()

    active_service.refresh_from_db()
    assert active_service.status == ServiceStatus.ACTIVE
    assert Operation.objects.get(action=PanelAction.SUSPEND).status == OperationStatus.FAILED


def test_changed_resources_reach_the_panel_over_the_template(active_service, panel, tasks):
    active_service.resources.filter(kind=ResourceKind.DATABASES).update(quantity=20)
    active_service.resources.create(kind=ResourceKind.SHELL, quantity=1)

    ask(active_service, PanelAction.SET_LIMITS)
    tasks.run_all()

    limits = panel.app.users[active_service.panel_username]["limits"]
    assert (limits["limit_db"], limits["limit_webdomains"], limits["limit_shell"]) == ("20", "25", "on")
    assert Operation.objects.get(action=PanelAction.SET_LIMITS).status == OperationStatus.DONE


def test_change_password_stores_the_new_password_once_the_panel_has_it(active_service, panel, tasks):
    old = active_service.panel_password

    ask(active_service, PanelAction.CHANGE_PASSWORD)
    assert active_service.panel_password == old
    tasks.run_all()

    active_service.refresh_from_db()
    assert active_service.panel_password != old
    assert panel.app.users[active_service.panel_username]["password"] == active_service.panel_password
    assert Operation.objects.get(action=PanelAction.CHANGE_PASSWORD).secret is None


def test_delete_removes_the_account_then_marks_the_service_deleted(active_service, panel, tasks):
    ask(active_service, PanelAction.CLOSE)
    assert active_service.status == ServiceStatus.ACTIVE
    tasks.run_all()

    active_service.refresh_from_db()
    assert active_service.status == ServiceStatus.DELETED
    assert panel.app.users == {}


def test_deleting_an_account_that_is_already_gone_counts_as_done(active_service, panel, tasks):
    del panel.app.users[active_service.panel_username]

    ask(active_service, PanelAction.CLOSE)
    tasks.run_all()

    active_service.refresh_from_db()
    assert active_service.status == ServiceStatus.DELETED


def test_deleting_an_unpaid_service_touches_no_panel(make_service, tasks):
    service = make_service()

    ask(service, PanelAction.CLOSE)

    assert service.status == ServiceStatus.DELETED
    assert not Operation.objects.exists()
    assert tasks.pending() == []


def test_sync_takes_the_panels_word_for_the_accounts_state(active_service, panel, tasks):
    panel.app.users[active_service.panel_username]["active"] = False

    ask(active_service, PanelAction.SYNC)
    tasks.run_all()

    active_service.refresh_from_db()
    assert active_service.status == ServiceStatus.SUSPENDED
    result = Operation.objects.get(action=PanelAction.SYNC).result
    assert f"{active_service.panel_username}: suspended" in result
    assert "limit_db=10" in result


@pytest.mark.parametrize(
    ("action", "message"),
    [(PanelAction.RESUME, "is already “Active”: nothing to do"), (PanelAction.SUSPEND, "already has an operation in progress")],
)
def test_actions_the_service_cannot_take_now_are_refused_and_queue_nothing(active_service, tasks, action, message):
    ask(active_service, PanelAction.SET_LIMITS)  # pending: nothing else may run on this account meanwhile
    before = Operation.objects.count()

    with pytest.raises(ValidationError, match=message):
        ask(active_service, action)

    assert Operation.objects.count() == before


# Deleting a service with dedicated addresses: off ISPmanager Business first, then back to IPmanager.


@pytest.fixture
def with_ips(module, ipmanager):
    """Services of the module get dedicated addresses from the seed's IPmanager (user billing / secret)."""
    module.ipmanager = IPmanagerIntegrationFactory(url=ipmanager.url, username="billing", password="secret")
    module.save()

    def open_(make_service, tasks):
        service = make_service()
        ServiceResource.objects.create(service=service, kind=ResourceKind.DEDICATED_IPV4, quantity=1)
        service_mark_paid(service=service)
        tasks.run_all()
        service.refresh_from_db()
        assert service.status == ServiceStatus.ACTIVE
        return service, IPAssignment.objects.get(service=service).address

    return open_


def allocated_in_ipmanager(ipmanager):
    return [entry["ip"] for entry in ipmanager.app.allocated.values()]


@pytest.mark.parametrize("already_gone", [False, True], ids=["assigned", "already-gone-from-the-panel"])
def test_delete_takes_the_address_off_ispmanager_then_gives_it_back_to_ipmanager(
    with_ips, make_service, panel, ipmanager, tasks, already_gone
):
    service, address = with_ips(make_service, tasks)
    assert panel.app.ip_addresses[address] == {"owner": service.panel_username, "iprole": "assigned"}
    if already_gone:
        del panel.app.ip_addresses[address]

    ask(service, PanelAction.CLOSE)
    tasks.run_all()

    service.refresh_from_db()
    assert service.status == ServiceStatus.DELETED
    assert panel.app.users == {}
    assert panel.app.ip_addresses == {}
    assert allocated_in_ipmanager(ipmanager) == []
    assert IPAssignment.objects.get(service=service).released_at is not None


def test_an_address_the_panel_did_not_let_go_is_not_given_back_to_ipmanager(with_ips, make_service, panel, ipmanager, tasks, settings):
    settings.PROVISIONING_MAX_ATTEMPTS = 1
    service, address = with_ips(make_service, tasks)
    panel.app.faults.fail_next(1, func="ipaddr.delete")

    ask(service, PanelAction.CLOSE)
    tasks.run_all()

    operation = Operation.objects.get(service=service, action=PanelAction.CLOSE)
    assert operation.status == OperationStatus.FAILED
    assert address in panel.app.ip_addresses
    assert allocated_in_ipmanager(ipmanager) == [address]
    assert IPAssignment.objects.get(service=service).released_at is None

    operation_retry(operation=operation)
    tasks.run_all()

    service.refresh_from_db()
    assert service.status == ServiceStatus.DELETED
    assert (panel.app.ip_addresses, allocated_in_ipmanager(ipmanager)) == ({}, [])


def test_an_address_the_panel_has_assigned_to_another_user_is_left_there_and_the_service_is_deleted(
    with_ips, make_service, panel, ipmanager, tasks
):
    service, address = with_ips(make_service, tasks)
    panel.app.ip_addresses[address] = {"owner": "reseller-customer", "iprole": "assigned"}  # moved by hand in the panel

    ask(service, PanelAction.CLOSE)
    tasks.run_all()

    service.refresh_from_db()
    assert service.status == ServiceStatus.DELETED
    assert panel.app.ip_addresses == {address: {"owner": "reseller-customer", "iprole": "assigned"}}
    assert not [params for func, params in panel.app.calls if func == "ipaddr.delete"]
    assert allocated_in_ipmanager(ipmanager) == []  # IPmanager's address, which billing took for the service, goes back
    assert IPAssignment.objects.get(service=service).released_at is not None


def test_the_address_is_found_on_a_later_page_of_the_panels_address_list(with_ips, make_service, panel, ipmanager, tasks):
    others = {f"198.51.100.{n}": {"owner": "someone-else", "iprole": "assigned"} for n in (7, 8, 9)}
    panel.app.ip_addresses |= others
    panel.app.page_size = 2
    service, address = with_ips(make_service, tasks)
    assert list(panel.app.ip_addresses) == [*others, address]  # configured after the others: on the second page

    ask(service, PanelAction.CLOSE)
    tasks.run_all()

    service.refresh_from_db()
    assert service.status == ServiceStatus.DELETED
    assert panel.app.ip_addresses == others
    assert allocated_in_ipmanager(ipmanager) == []


@pytest.fixture
def lite():
    app = ISPmanagerEmulator(edition="lite")
    app.add_preset("Site hosting", limit_db=25, limit_webdomains=25)
    with EmulatorServer(app) as server:
        yield server


def test_deleting_a_service_on_lite_gives_its_address_back_to_ipmanager_and_asks_lite_nothing_about_it(
    lite, ipmanager, make_service, tariff, tasks
):
    tariff.processing_module = ProcessingModuleFactory(
        url=lite.url, username="root", password="secret", ipmanager=IPmanagerIntegrationFactory(url=ipmanager.url, password="secret")
    )
    tariff.save()
    service = make_service()
    service_mark_paid(service=service)
    tasks.run_all()
    service.refresh_from_db()
    address = "133.31.223.7"  # held by the service (Lite never had it configured)
    ipmanager.app.take(address, owner="billing", note=note_for(service.pk))
    IPAssignment.objects.create(integration=tariff.processing_module.ipmanager, service=service, address=address, ip_type="alias")

    ask(service, PanelAction.CLOSE)
    tasks.run_all()

    service.refresh_from_db()
    assert service.status == ServiceStatus.DELETED
    assert allocated_in_ipmanager(ipmanager) == []
    assert not [func for func, _params in lite.app.calls if func.startswith("ipaddr")]
