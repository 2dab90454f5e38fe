"""Changing a live service's dedicated IPs: charged or credited like any resource, taken from IPmanager or given back, over HTTP.

The seed's IPmanager (tests/ipam_sync/conftest.py) hands out 133.31.223.1, .2, ... in that order (.0 is the network),
and the tariff sells dedicated IPs at 150.00 a month each, none included, at most 2. The service's current period is
2026-04-30 10:00 - 2026-05-31 10:00 UTC (31 days); a change on 2026-05-16 has 15 days left: one address is
150.00 * 15/31 = 72.58.
"""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.urls import reverse

from billing.changes import service_change
from billing.choices import DocumentKind, LedgerEntryKind, PanelAction, ResourceKind, ServiceStatus
from billing.models import Document, LedgerEntry, Service
from billing.services import ledger_entry_add, service_mark_paid
from ipam_sync.models import IPAssignment
from ipam_sync.services import note_for
from provisioning.choices import OperationStatus
from provisioning.models import Operation
from tests.ipam_sync import conftest as dedicated_ips
from tests.ipam_sync.conftest import pool_address

# The fixtures of the dedicated-IP tests: the seed's IPmanager, ISPmanager Business taking addresses from it, a tariff selling them.
integration, ipm, make_service = dedicated_ips.integration, dedicated_ips.ipm, dedicated_ips.make_service
module, panel, tariff = dedicated_ips.module, dedicated_ips.panel, dedicated_ips.tariff

MAY_16 = datetime(2026, 5, 16, 12, 0, tzinfo=UTC)
ONE_ADDRESS = Decimal("72.58")


@pytest.fixture(autouse=True)
def billing_in_utc(settings):
    settings.TIME_ZONE = "UTC"


@pytest.fixture
def live_service(make_service, tasks):
    """An active service opened with `ips` addresses, in the current period above, with 500.00 on the balance."""

    def make(ips):
        service = make_service(ips=ips, domain="shop.example.com")
        service_mark_paid(service=service)
        tasks.run_all()
        Service.objects.filter(pk=service.pk).update(
            period_anchor=datetime(2026, 1, 31, 10, tzinfo=UTC),
            expires_at=datetime(2026, 5, 31, 10, tzinfo=UTC),
            price=Decimal("300.00") + ips * Decimal("150.00"),
        )
        ledger_entry_add(client=service.client, kind=LedgerEntryKind.TOPUP, amount=Decimal("500.00"))
        service.refresh_from_db()
        assert service.status == ServiceStatus.ACTIVE
        return service

    return make


def change_ips(service, ips, tasks=None):
    with time_machine.travel(MAY_16, tick=False):
        service_change(service=service, quantities={ResourceKind.DEDICATED_IPV4: ips})
    if tasks is not None:
        tasks.run_all()
    service.refresh_from_db()
    return Operation.objects.filter(service=service, action=PanelAction.SET_LIMITS).get()


def live_addresses(service):
    return sorted(IPAssignment.objects.filter(service=service, released_at__isnull=True).values_list("address", flat=True))


def released_addresses(service):
    return sorted(IPAssignment.objects.filter(service=service, released_at__isnull=False).values_list("address", flat=True))


def ours_in_ipmanager(ipm, service):
    return sorted(entry["ip"] for entry in ipm.allocated.values() if entry["note"] == note_for(service.pk))


def assigned_in_panel(panel, service):
    return sorted(address for address, ip in panel.app.ip_addresses.items() if ip["owner"] == service.panel_username)


def movements(service, kind):
    return list(LedgerEntry.objects.filter(client=service.client, kind=kind).values_list("amount", flat=True))


def allocations(ipm):
    return [params for func, params in ipm.calls if func == "ip.edit" and params.get("sok")]


@pytest.mark.parametrize(("before", "after"), [(0, 1), (1, 2)])
def test_more_addresses_are_charged_for_the_days_left_taken_from_ipmanager_with_the_services_note_and_assigned_in_ispmanager(
    live_service, ipm, panel, tasks, before, after
):
    service = live_service(before)
    first = [pool_address(n) for n in range(1, before + 1)]
    assert live_addresses(service) == assigned_in_panel(panel, service) == first

    operation = change_ips(service, after, tasks)

    assert (operation.status, operation.attempts) == (OperationStatus.DONE, 1)
    assert movements(service, LedgerEntryKind.CHARGE) == [-ONE_ADDRESS]
    invoice = Document.objects.get(service=service, kind=DocumentKind.INVOICE)
    assert invoice.gross == ONE_ADDRESS
    assert service.price == Decimal("300.00") + after * Decimal("150.00")
    wanted = [pool_address(n) for n in range(1, after + 1)]
    assert live_addresses(service) == ours_in_ipmanager(ipm, service) == sorted(ipm.owned_by("billing")) == wanted
    new = pool_address(after)
    assert next(entry for entry in ipm.allocated.values() if entry["ip"] == new) == {
        "ip": new, "iptype": "alias", "domain": "shop.example.com.", "note": note_for(service.pk), "owner": "billing",
    }  # fmt: skip
    assert assigned_in_panel(panel, service) == wanted
    assert len(allocations(ipm)) == after


def test_fewer_addresses_are_credited_and_the_latest_one_goes_off_the_panel_and_back_to_ipmanager(live_service, ipm, panel, tasks):
    service = live_service(2)
    first, latest = pool_address(1), pool_address(2)
    assert assigned_in_panel(panel, service) == [first, latest]

    operation = change_ips(service, 1, tasks)

    assert (operation.status, operation.attempts) == (OperationStatus.DONE, 1)
    assert movements(service, LedgerEntryKind.REFUND) == [ONE_ADDRESS]
    assert Document.objects.get(service=service, kind=DocumentKind.CREDIT_NOTE).gross == -ONE_ADDRESS
    assert movements(service, LedgerEntryKind.CHARGE) == []
    assert service.price == Decimal("450.00")
    assert live_addresses(service) == ours_in_ipmanager(ipm, service) == sorted(ipm.owned_by("billing")) == [first]
    assert released_addresses(service) == [latest]
    assert panel.app.ip_addresses == {first: {"owner": service.panel_username, "iprole": "assigned"}}
    assert [params for func, params in ipm.calls if func == "ip.delete"] == [{"elid": latest}]


@pytest.mark.parametrize("lost", ["ipmanager:ip.edit", "ispmanager:ipaddr.edit", "ispmanager:user.edit"])
def test_an_upgrade_retried_after_a_lost_reply_takes_no_second_address(live_service, ipm, panel, tasks, lost):
    service = live_service(1)
    where, func = lost.split(":")
    (ipm if where == "ipmanager" else panel.app).faults.drop_reply_next(func=func)

    operation = change_ips(service, 2, tasks)

    assert (operation.status, operation.attempts) == (OperationStatus.DONE, 2)  # a lost allocation is found by its note on the retry
    wanted = [pool_address(1), pool_address(2)]
    assert live_addresses(service) == ours_in_ipmanager(ipm, service) == sorted(ipm.owned_by("billing")) == wanted
    assert IPAssignment.objects.filter(service=service).count() == 2
    assert assigned_in_panel(panel, service) == wanted
    assert len(allocations(ipm)) == 2  # the open's and the upgrade's: none again on the retry
    assert movements(service, LedgerEntryKind.CHARGE) == [-ONE_ADDRESS]


@pytest.mark.parametrize("lost", ["ipmanager:ip.delete", "ispmanager:ipaddr.delete"])
def test_a_downgrade_retried_after_a_lost_reply_gives_back_nothing_twice(live_service, ipm, panel, tasks, lost):
    service = live_service(2)
    where, func = lost.split(":")
    (ipm if where == "ipmanager" else panel.app).faults.drop_reply_next(func=func)

    operation = change_ips(service, 1, tasks)

    assert (operation.status, operation.attempts) == (OperationStatus.DONE, 2)
    assert live_addresses(service) == ours_in_ipmanager(ipm, service) == [pool_address(1)]
    assert released_addresses(service) == [pool_address(2)]
    assert list(panel.app.ip_addresses) == [pool_address(1)]
    assert [params for func, params in ipm.calls if func == "ip.delete"] == [{"elid": pool_address(2)}]
    assert [params for func, params in panel.app.calls if func == "ipaddr.delete"] == [{"elid": pool_address(2)}]
    assert movements(service, LedgerEntryKind.REFUND) == [ONE_ADDRESS]


def test_a_retry_never_gives_back_an_address_ipmanager_has_handed_to_another_service_meanwhile(
    live_service, make_service, ipm, panel, tasks
):
    service = live_service(2)
    ipm.faults.drop_reply_next(func="ip.delete")
    change_ips(service, 1)
    operation = Operation.objects.get(service=service, action=PanelAction.SET_LIMITS)
    tasks.run_next()  # the first attempt: .2 is given back, the reply lost; the retry waits
    assert pool_address(2) not in ours_in_ipmanager(ipm, service)
    ipm.run_checks()
    ipm.take(pool_address(2), owner="billing", note=note_for(service.pk + 1000))  # handed out again meanwhile

    tasks.run_all()

    operation.refresh_from_db()
    assert (operation.status, operation.attempts) == (OperationStatus.DONE, 2)
    assert [params for func, params in ipm.calls if func == "ip.delete"] == [{"elid": pool_address(2)}]
    assert next(entry for entry in ipm.allocated.values() if entry["ip"] == pool_address(2))["note"] == note_for(service.pk + 1000)
    assert released_addresses(service) == [pool_address(2)]


@pytest.mark.parametrize(
    ("allow_dedicated_ip", "edition", "has_ipmanager", "message"),
    [
        (True, "lite", True, "ISPmanager Lite does not hand them out"),
        (False, "business", True, "This tariff does not offer dedicated IP addresses"),
        (True, "business", False, "processing module has no IPmanager integration"),
    ],
    ids=["ispmanager-lite", "tariff-does-not-offer", "no-ipmanager"],
)
def test_more_addresses_are_refused_before_anything_is_charged_where_they_cannot_be_had(
    live_service, module, tariff, ipm, panel, tasks, allow_dedicated_ip, edition, has_ipmanager, message
):
    service = live_service(0)
    tariff.allow_dedicated_ip = allow_dedicated_ip
    tariff.save()
    module.edition = edition
    if not has_ipmanager:
        module.ipmanager = None
    module.save()
    ipm.calls.clear()
    documents = Document.objects.count()

    with time_machine.travel(MAY_16, tick=False), pytest.raises(ValidationError) as refused:
        service_change(service=service, quantities={ResourceKind.DEDICATED_IPV4: 1})

    assert message in refused.value.message_dict[ResourceKind.DEDICATED_IPV4][0]
    service.refresh_from_db()
    assert movements(service, LedgerEntryKind.CHARGE) == []
    assert Document.objects.count() == documents
    assert service.price == Decimal("300.00")
    assert service.resources.get(kind=ResourceKind.DEDICATED_IPV4).quantity == 0
    assert not Operation.objects.filter(service=service, action=PanelAction.SET_LIMITS).exists()
    assert ipm.calls == []


def test_the_client_adds_an_address_from_the_change_page(live_service, ipm, panel, tasks, client):
    service = live_service(0)
    user = service.client.users.first() or service.ordered_by
    service.client.users.add(user)
    client.force_login(user)
    page_url = reverse("service_change", args=[service.pk])
    values = {"tariff": service.tariff_id, "price": str(service.price), ResourceKind.DEDICATED_IPV4: "1"}

    with time_machine.travel(MAY_16, tick=False):
        assert f'name="{ResourceKind.DEDICATED_IPV4}"' in client.get(page_url).content.decode()
        assert "72.58" in client.get(page_url, values).content.decode()
        assert client.post(page_url, values | {"confirm": "yes"}).status_code == 302
    tasks.run_all()

    assert movements(service, LedgerEntryKind.CHARGE) == [-ONE_ADDRESS]
    assert live_addresses(service) == assigned_in_panel(panel, service) == [pool_address(1)]
