"""Dedicated IPs of a service: taken from IPmanager on open, assigned in ISPmanager, given back on delete."""

import time

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from billing.choices import BillingPeriod, PanelAction, ResourceKind, ServiceStatus
from billing.services import order_place, service_action_request, service_mark_paid
from ipam_sync.models import IPAssignment
from ipam_sync.services import ipmanager_client, note_for
from provisioning.choices import OperationStatus
from provisioning.coremanager.errors import AccessDenied
from provisioning.models import FailedOperation, Operation
from provisioning.services import operation_run
from tests.conftest import postgres_only, run_at_once
from tests.factories import ClientFactory, ServiceFactory, UserFactory
from tests.ipam_sync.conftest import POOL_SIZE, in_pool, pool_address


def pay(service):
    service_mark_paid(service=service)
    service.refresh_from_db()
    return Operation.objects.get(service=service, action=PanelAction.OPEN)


def live_addresses(service):
    return sorted(IPAssignment.objects.filter(service=service, released_at__isnull=True).values_list("address", flat=True))


def ours_in_ipmanager(ipm, service):
    return sorted(entry["ip"] for entry in ipm.allocated.values() if entry["note"] == note_for(service.pk))


def fill_pool(ipm, leave_free=0):
    for n in range(POOL_SIZE - leave_free):
        ipm.take(pool_address(n), owner="billing", note="taken before the test")


@pytest.mark.parametrize("ips", [1, 2])
def test_seed_scenario_ordering_dedicated_ips_allocates_them_in_ipmanager_and_assigns_them_in_ispmanager(tariff, ipm, panel, tasks, ips):
    client = ClientFactory()
    service = order_place(
        client=client, user=UserFactory(), tariff=tariff, period=BillingPeriod.MONTH, domain="Shop.Example.com", dedicated_ips=ips
    )
    assert service.resources.get(kind=ResourceKind.DEDICATED_IPV4).quantity == ips

    pay(service)
    tasks.run_all()

    service.refresh_from_db()
    assert service.status == ServiceStatus.ACTIVE
    addresses = live_addresses(service)
    assert len(addresses) == len(set(addresses)) == ips
    for address in addresses:
        assert in_pool(address), address
        entry = next(entry for entry in ipm.allocated.values() if entry["ip"] == address)
        assert entry == {"ip": address, "iptype": "alias", "domain": "shop.example.com.", "note": note_for(service.pk), "owner": "billing"}
        assert panel.app.ip_addresses[address] == {"owner": service.panel_username, "iprole": "assigned"}
    assert sorted(ipm.owned_by("billing")) == addresses


@pytest.mark.parametrize(("trailing_dot", "ptr"), [(True, "shop.example.com."), (False, "shop.example.com")], ids=["default", "off"])
def test_the_ptr_name_sent_to_ipmanager_is_the_fqdn_with_a_trailing_dot_unless_switched_off(
    make_service, ipm, tasks, settings, trailing_dot, ptr
):
    settings.IPAM_PTR_TRAILING_DOT = trailing_dot
    service = make_service(ips=1, domain="shop.example.com")

    pay(service)
    tasks.run_all()

    assert [params["domain"] for func, params in ipm.calls if func == "ip.edit" and params.get("sok")] == [ptr]
    assert [entry["domain"] for entry in ipm.allocated.values()] == [ptr]


def test_the_note_names_this_billing_and_the_service(settings):
    settings.IPAM_NOTE_PREFIX = "billing-msk"

    assert note_for(117) == "billing-msk service #117"


@pytest.mark.parametrize(
    ("address", "allowed"),
    [("133.31.223.1", True), ("133.31.223.128", True), ("133.31.223.129", False), ("133.31.223.200", False)],
)
def test_the_user_may_take_only_addresses_of_its_range(integration, ipm, address, allowed):
    client = ipmanager_client(integration)

    if allowed:
        assert client.allocate(ip=address, iptype="alias", domain="a.example.com", note=note_for(1)) == address
        assert ipm.owned_by("billing") == [address]
    else:
        with pytest.raises(AccessDenied):
            client.allocate(ip=address, iptype="alias", domain="a.example.com", note=note_for(1))
        assert ipm.allocated == {}


@pytest.mark.parametrize("ips", [1, 2])
def test_a_lost_allocation_reply_is_adopted_on_retry_no_leak_no_double(make_service, ipm, panel, tasks, ips):
    service = make_service(ips=ips)
    ipm.faults.drop_reply_next(func="ip.edit")

    operation = pay(service)
    tasks.run_all()

    operation.refresh_from_db()
    service.refresh_from_db()
    assert operation.attempts == 2
    assert service.status == ServiceStatus.ACTIVE
    assert len(ours_in_ipmanager(ipm, service)) == ips
    assert live_addresses(service) == ours_in_ipmanager(ipm, service) == sorted(ipm.owned_by("billing"))
    assert IPAssignment.objects.count() == ips
    assert sorted(panel.app.ip_addresses) == live_addresses(service)


@pytest.mark.parametrize("func", ["user.add.finish", "ipaddr.edit"])
def test_a_lost_ispmanager_reply_after_the_addresses_were_taken_takes_no_more(make_service, ipm, panel, tasks, func):
    service = make_service(ips=2)
    panel.app.faults.drop_reply_next(func=func)

    operation = pay(service)
    tasks.run_all()

    operation.refresh_from_db()
    service.refresh_from_db()
    assert (operation.attempts, service.status) == (2, ServiceStatus.ACTIVE)
    assert len(ipm.allocated) == 2
    assert live_addresses(service) == ours_in_ipmanager(ipm, service)
    assert {address: ip["owner"] for address, ip in panel.app.ip_addresses.items()} == dict.fromkeys(
        live_addresses(service), service.panel_username
    )


def test_an_exhausted_pool_fails_the_open_into_the_staff_queue_before_any_account_is_made(make_service, ipm, panel, tasks):
    fill_pool(ipm)
    service = make_service(ips=1)

    operation = pay(service)
    tasks.run_all()

    operation.refresh_from_db()
    service.refresh_from_db()
    assert (operation.status, operation.attempts) == (OperationStatus.FAILED, 1)
    assert "no free addresses" in operation.last_error
    assert list(FailedOperation.objects.all()) == [operation]
    assert service.status == ServiceStatus.FAILED
    assert panel.app.users == {}
    assert not IPAssignment.objects.filter(released_at__isnull=True).exists()
    assert len(ipm.allocated) == POOL_SIZE


def test_with_two_ordered_and_one_free_the_one_taken_is_given_back(make_service, ipm, panel, tasks):
    fill_pool(ipm, leave_free=1)
    last_free = pool_address(POOL_SIZE - 1)
    service = make_service(ips=2)

    operation = pay(service)
    tasks.run_all()

    operation.refresh_from_db()
    assert operation.status == OperationStatus.FAILED
    assert "no free addresses" in operation.last_error
    assert panel.app.users == {}
    assert all(entry["ip"] != last_free for entry in ipm.allocated.values())
    assert len(ipm.allocated) == POOL_SIZE - 1
    assert not IPAssignment.objects.filter(released_at__isnull=True).exists()
    assert ("ip.delete", {"elid": last_free}) in ipm.calls


def test_an_open_with_ips_but_no_integration_on_the_module_fails_permanently(module, make_service, ipm, panel, tasks):
    module.ipmanager = None
    module.save()
    service = make_service(ips=1)

    operation = pay(service)
    tasks.run_all()

    operation.refresh_from_db()
    assert operation.status == OperationStatus.FAILED
    assert "has no IPmanager integration" in operation.last_error
    assert panel.app.users == {}
    assert ipm.allocated == {}


def test_an_open_without_ordered_ips_never_calls_ipmanager(make_service, ipm, panel, tasks):
    service = make_service(ips=0)

    pay(service)
    tasks.run_all()

    service.refresh_from_db()
    assert service.status == ServiceStatus.ACTIVE
    assert ipm.calls == []
    assert panel.app.ip_addresses == {}
    assert not IPAssignment.objects.exists()


@pytest.mark.parametrize(
    ("allow_dedicated_ip", "edition", "message"),
    [
        (False, "business", "does not offer dedicated IP addresses"),
        (True, "lite", "ISPmanager Lite does not hand them out"),
    ],
    ids=["tariff-does-not-allow", "ispmanager-lite"],
)
def test_dedicated_ips_cannot_be_ordered_when_the_tariff_or_the_panel_does_not_give_them(
    tariff, module, ipm, allow_dedicated_ip, edition, message
):
    tariff.allow_dedicated_ip = allow_dedicated_ip
    tariff.save()
    module.edition = edition
    module.save()

    with pytest.raises(ValidationError) as refused:
        order_place(
            client=ClientFactory(), user=UserFactory(), tariff=tariff, period=BillingPeriod.MONTH, domain="a.example.com", dedicated_ips=1
        )

    assert message in str(refused.value)
    assert ipm.calls == []


@pytest.fixture
def open_service(make_service, tasks):
    def open_(ips=1):
        service = make_service(ips=ips)
        pay(service)
        tasks.run_all()
        service.refresh_from_db()
        assert service.status == ServiceStatus.ACTIVE
        return service

    return open_


def close(service, tasks):
    service_action_request(service=service, action=PanelAction.CLOSE)
    tasks.run_all()
    service.refresh_from_db()


@pytest.mark.parametrize(("gone", "attempts"), [("", 1), ("already-released-in-ipmanager", 1), ("reply-lost", 2)])
def test_deleting_the_service_releases_its_addresses(open_service, ipm, panel, tasks, gone, attempts):
    service = open_service(ips=2)
    addresses = live_addresses(service)
    if gone == "already-released-in-ipmanager":
        ipm.allocated.clear()
    elif gone == "reply-lost":
        ipm.faults.drop_reply_next(func="ip.delete")

    close(service, tasks)

    assert service.status == ServiceStatus.DELETED
    assert ipm.allocated == {}
    assert panel.app.users == {}
    assert panel.app.ip_addresses == {}
    assignments = IPAssignment.objects.filter(service=service)
    assert sorted(assignments.values_list("address", flat=True)) == addresses
    assert all(assignment.released_at is not None for assignment in assignments)
    operation = Operation.objects.get(service=service, action=PanelAction.CLOSE)
    assert (operation.status, operation.attempts) == (OperationStatus.DONE, attempts)


def test_an_address_released_on_delete_goes_to_a_later_service_once_ipmanager_checked_it(open_service, ipm, tasks):
    first = open_service(ips=1)
    (address,) = live_addresses(first)
    close(first, tasks)

    second = open_service(ips=1)
    ipm.run_checks()
    third = open_service(ips=1)

    assert live_addresses(second) != [address]
    assert live_addresses(third) == [address]
    assert IPAssignment.objects.filter(address=address).count() == 2
    assert IPAssignment.objects.get(address=address, released_at__isnull=True).service == third


def test_ipmanager_handing_out_an_address_billing_still_holds_fails_the_open_and_points_to_sync_ips(
    make_service, live_assignment, ipm, panel, tasks
):
    holder = live_assignment(pool_address(1))  # free in IPmanager: the next address it hands out (.0 is the network)
    service = make_service(ips=1)

    operation = pay(service)
    tasks.run_all()

    operation.refresh_from_db()
    service.refresh_from_db()
    assert operation.status == OperationStatus.FAILED
    assert "sync_ips" in operation.last_error
    assert f"service #{holder.service_id}" in operation.last_error
    assert service.status == ServiceStatus.FAILED
    assert not IPAssignment.objects.filter(service=service).exists()
    holder.refresh_from_db()
    assert holder.released_at is None
    assert ipm.allocated == {}, "the address IPmanager handed out by mistake is given back"
    assert panel.app.users == {}


@postgres_only()
def test_two_services_opening_at_once_get_different_addresses(make_service, ipm, panel, tasks):
    services = [make_service(ips=1), make_service(ips=1)]
    operations = [pay(service) for service in services]

    outcomes = run_at_once(2, lambda i: operation_run(operation_id=operations[i].pk))

    assert outcomes == [None, None]
    addresses = [live_addresses(service) for service in services]
    assert all(len(held) == 1 for held in addresses)
    assert addresses[0] != addresses[1]
    assert sorted(ipm.owned_by("billing")) == sorted(held[0] for held in addresses)
    for service in services:
        service.refresh_from_db()
        assert service.status == ServiceStatus.ACTIVE


@postgres_only()
def test_the_database_gives_one_address_to_one_live_service_only(integration, transactional_db):
    services = [ServiceFactory(), ServiceFactory()]

    def insert(i):
        with transaction.atomic():
            IPAssignment.objects.create(integration=integration, service=services[i], address="133.31.223.7")
            time.sleep(0.2)  # both inserts overlap

    outcomes = run_at_once(2, insert)

    assert sorted(type(outcome).__name__ for outcome in outcomes) == ["IntegrityError", "NoneType"]
    assert any(isinstance(outcome, IntegrityError) for outcome in outcomes)
    assert IPAssignment.objects.filter(address="133.31.223.7", released_at__isnull=True).count() == 1
