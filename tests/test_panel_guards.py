"""The second lines behind the review's findings: what holds even when the first line (a form's validation) was skipped.

A stored override from before its validation existed must not make the probe release an address; a
user list that does not tell an account's state must not become a sync finding or a queued fix; an
account whose form shows no full name is opened only when its owner is billing's login.
"""

import contextlib

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from billing.choices import ProductType, ServiceStatus
from billing.services import service_mark_paid
from ipam_sync.ipmanager.functions import validate_function_names
from ipam_sync.ipmanager.probe import integration_probe
from ipam_sync.models import IPmanagerIntegration
from ipam_sync.services import note_for
from provisioning.accounts_sync import sync_accounts_run
from provisioning.coremanager.emulator import EmulatorServer
from provisioning.models import AccountSyncFinding, AccountSyncRun, Operation
from tests.factories import (
    ClientFactory,
    IPmanagerIntegrationFactory,
    ProcessingModuleFactory,
    ServiceFactory,
    TariffPlanFactory,
    TariffResourceFactory,
    UserFactory,
)
from tests.test_issue10_review import PRESET, Rewrite, front

ADDRESS = "133.31.223.5"


@pytest.fixture
def serve():
    with contextlib.ExitStack() as stack:
        yield lambda app: stack.enter_context(EmulatorServer(app))


# The probe and the function names.


@pytest.mark.parametrize(
    "stored",
    [{"read": "ip.delete"}, {"list": "ip.free"}, {"release": "ip.unassign", "groups": "ip.unassign"}],
    ids=["read-is-ip.delete", "list-is-a-free", "groups-is-the-release"],
)
def test_the_probe_refuses_a_stored_override_that_reads_with_a_releasing_function(ipmanager, transactional_db, stored):
    ipmanager.app.rename = {"ip.delete": "ip.unassign"} if "release" in stored else {}
    ipmanager.app.take(ADDRESS, owner="billing", note=note_for(42))
    integration = IPmanagerIntegrationFactory(url=ipmanager.url, username="billing", password="secret")
    IPmanagerIntegration.objects.filter(pk=integration.pk).update(function_names=stored)  # saved before validation refused it
    integration.refresh_from_db()

    report = integration_probe(integration=integration)

    assert ADDRESS in ipmanager.app.owned_by("billing")
    assert not [func for func, _params in ipmanager.app.calls if func in ("ip.delete", "ip.free", "ip.unassign")]
    assert "changes something: a probe never calls it" in str(report.to_json())


@pytest.mark.parametrize(
    "overrides",
    [{"read": "ip.delete"}, {"whoami": "ip.free"}, {"groups": "iptype.delete"}, {"release": "ip.unassign", "list": "ip.unassign"}],
)
def test_a_read_purpose_may_not_name_a_releasing_function(overrides):
    with pytest.raises(ValidationError, match="releases or deletes"):
        validate_function_names(overrides)


@pytest.mark.parametrize("overrides", [{"release": "ip.free"}, {"read": "ip.show", "list": "ip.list"}, {"release": "ip.unassign"}])
def test_read_purposes_that_read_are_accepted(overrides):
    validate_function_names(overrides)


# ISPmanager accounts: the state a list does not tell, and the owner when the form has no full name.


@pytest.fixture
def module(ispmanager, transactional_db):
    ispmanager.app.add_preset(PRESET, limit_db=25, limit_webdomains=25)
    return ProcessingModuleFactory(url=ispmanager.url, username="root", password="secret", product_type=ProductType.VHOST)


@pytest.fixture
def active_service(module, tasks):
    tariff = TariffPlanFactory(processing_module=module, product_type=ProductType.VHOST, account_template=PRESET)
    TariffResourceFactory(tariff=tariff, included=10)
    client, user = ClientFactory(), UserFactory()
    client.users.add(user)
    service = ServiceFactory(client=client, tariff=tariff, ordered_by=user)
    service_mark_paid(service=service)
    tasks.run_all()
    service.refresh_from_db()
    assert service.status == ServiceStatus.ACTIVE
    return service


def hide_active(doc):
    for row in doc.get("elem", []):
        row.pop("active", None)
    return doc


def test_an_account_sync_neither_reports_nor_fixes_a_state_the_list_does_not_tell(module, active_service, ispmanager, serve):
    ispmanager.app.users[active_service.panel_username]["active"] = False  # a real difference, but the list will not show it
    front(module, serve(Rewrite(ispmanager.app, "user", reply=hide_active)))

    run = sync_accounts_run(module=module, dry_run=False)

    assert run.status == AccountSyncRun.Status.DONE
    assert not AccountSyncFinding.objects.filter(kind=AccountSyncFinding.Kind.STATUS).exists()
    assert (run.queued, Operation.objects.filter(service=active_service).exclude(action="open").count()) == (0, 0)


@pytest.mark.parametrize(("owner", "opens"), [("root", True), ("reseller1", False)], ids=["billing's", "another-owner"])
def test_open_control_panel_goes_by_the_owner_when_the_form_shows_no_full_name(active_service, ispmanager, client, owner, opens):
    ispmanager.app.form_active = False  # user.edit shows neither active nor fullname, as the document allows
    ispmanager.app.users[active_service.panel_username]["owner"] = owner
    client.force_login(active_service.ordered_by)

    response = client.post(reverse("service_panel_login", args=[active_service.pk]))

    assert response.status_code == 302
    assert response.url.startswith(ispmanager.url) is opens
    assert (active_service.panel_username in ispmanager.app.login_keys.values()) is opens
