"""Review of the real-panel work: what a hostile or drifting panel, a careless override or a client can still do.

Each test states what must hold and fails today (xfail, strict): the reason names the finding. The panels
are the emulators over HTTP; where a real panel may answer in a shape the documents do not promise, a
`Rewrite` front serves the same emulator and changes only that reply (or the request it receives).
"""

import contextlib
import io
import json
from decimal import Decimal
from urllib.parse import parse_qsl, urlencode

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from billing.choices import PanelAction, ProductType, ResourceKind, ServiceStatus
from billing.models import ServiceResource
from billing.services import service_action_request, service_mark_paid
from ipam_sync.ipmanager.emulator import IPmanagerEmulator
from ipam_sync.models import IPAssignment
from ipam_sync.services import integration_check_connection, note_for, service_ips_allocate
from provisioning.accounts_sync import sync_accounts_run
from provisioning.coremanager.emulator import EmulatorServer
from provisioning.coremanager.errors import CutOff, ProvisioningError
from provisioning.ispmanager.client import ISPmanagerClient
from provisioning.ispmanager.emulator import ISPmanagerEmulator
from provisioning.models import AccountSyncFinding, AccountSyncRun
from provisioning.services import module_check_connection
from tests.factories import (
    ClientFactory,
    IPmanagerIntegrationFactory,
    ProcessingModuleFactory,
    ServiceFactory,
    TariffPlanFactory,
    TariffResourceFactory,
    UserFactory,
)

PRESET = "Site hosting"
TIMEOUT = (2, 5)


class Rewrite:
    """Serve an emulator whose calls of `func` are bent: `request(params)` changes what the emulator receives,
    `reply(doc)` what the client gets back (any JSON value as `doc`); after `limit` calls of `func` every
    further one answers HTTP 503, so that a client that would call for ever is stopped and the test can count.
    """

    def __init__(self, app, func, *, request=None, reply=None, limit=None):
        self.app, self.func, self.path = app, func, app.path
        self.request, self.reply, self.limit = request, reply, limit
        self.calls = 0

    def __call__(self, environ, start_response):
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        params = dict(parse_qsl(body.decode(), keep_blank_values=True))
        if params.get("func") != self.func:
            environ["wsgi.input"] = io.BytesIO(body)
            return self.app(environ, start_response)
        self.calls += 1
        if self.limit is not None and self.calls > self.limit:
            start_response("503 Service Unavailable", [("Content-Length", "0")])
            return [b""]
        if self.request:
            body = urlencode(self.request(params)).encode()
        environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(body), str(len(body))
        status = {}
        reply = b"".join(self.app(environ, lambda code, headers, exc_info=None: status.update(code=code)))
        if self.reply:
            reply = json.dumps({"doc": self.reply(json.loads(reply)["doc"])}).encode()
        start_response(status["code"], [("Content-Type", "application/json"), ("Content-Length", str(len(reply)))])
        return [reply]


def without_page_number(params):
    """A panel that ignores the page asked for: every call answers the first page."""
    return {key: value for key, value in params.items() if key != "p_num"}


@pytest.fixture
def serve():
    """serve(wsgi_app) -> a running EmulatorServer for it, stopped after the test."""
    with contextlib.ExitStack() as stack:
        yield lambda app: stack.enter_context(EmulatorServer(app))


@pytest.fixture
def integration(ipmanager, transactional_db):
    """The seed's IPmanager integration: user billing / secret, pool 133.31.223.0-.128 in the group alias."""
    return IPmanagerIntegrationFactory(name="IPmanager Moscow", url=ipmanager.url, username="billing", password="secret")


@pytest.fixture
def module(ispmanager, integration):
    """ISPmanager Business (root / secret) with the seed's template, taking dedicated IPs from the integration."""
    ispmanager.app.add_preset(PRESET, limit_db=25, limit_webdomains=25)
    return ProcessingModuleFactory(
        url=ispmanager.url, username="root", password="secret", product_type=ProductType.VHOST, ipmanager=integration, edition="business"
    )


@pytest.fixture
def tariff(module):
    tariff = TariffPlanFactory(processing_module=module, product_type=ProductType.VHOST, account_template=PRESET, allow_dedicated_ip=True)
    TariffResourceFactory(tariff=tariff, kind=ResourceKind.DATABASES, included=10)
    TariffResourceFactory(tariff=tariff, kind=ResourceKind.DEDICATED_IPV4, included=0, unit_price=Decimal("150.00"), max_quantity=2)
    return tariff


def ordered(tariff, ips=0):
    client, user = ClientFactory(), UserFactory()
    client.users.add(user)
    service = ServiceFactory(client=client, tariff=tariff, ordered_by=user)
    if ips:
        ServiceResource.objects.create(service=service, kind=ResourceKind.DEDICATED_IPV4, quantity=ips)
    return service


@pytest.fixture
def active_service(tariff, tasks):
    """active_service() -> a paid service whose account the emulator has created."""

    def make():
        service = ordered(tariff)
        service_mark_paid(service=service)
        tasks.run_all()
        service.refresh_from_db()
        assert service.status == ServiceStatus.ACTIVE
        return service

    return make


def front(model_obj, server):
    """Point a module or integration at another server (the Rewrite front of its emulator)."""
    type(model_obj).objects.filter(pk=model_obj.pk).update(url=server.url)
    model_obj.refresh_from_db()


def root_of(url) -> ISPmanagerClient:
    return ISPmanagerClient(url, "root", "secret", timeout=TIMEOUT)


# Paging: a panel that ignores the page number, or announces more rows than it will ever send.


def test_a_panel_that_answers_page_one_to_every_page_fails_the_account_sync(module, active_service, ispmanager, serve):
    services = [active_service() for _ in range(3)]
    ispmanager.app.page_size = 2
    front(module, serve(Rewrite(ispmanager.app, "user", request=without_page_number)))

    run = sync_accounts_run(module=module)

    assert run.status == AccountSyncRun.Status.FAILED
    # Today: DONE, and the third service is reported as having no account.
    assert not AccountSyncFinding.objects.filter(kind=AccountSyncFinding.Kind.MISSING, service=services[2]).exists()


def test_a_paging_loop_ends_against_a_panel_that_repeats_one_page_for_ever(module, ispmanager, serve):
    root_of(ispmanager.url).user_create(name="alice", password="alice-pass-1", fullname="Alice", preset=PRESET, limits={})
    ispmanager.app.page_size = 1
    endless = Rewrite(
        ispmanager.app, "user", request=without_page_number, reply=lambda doc: doc | {"p_elems": {"$": str(10**12)}}, limit=200
    )
    server = serve(endless)

    with pytest.raises(CutOff):
        root_of(server.url).users()
    assert endless.calls <= 200  # today it asks until the stop at 200 answers HTTP 503


# IPmanager function-name overrides: the read-only probe and the allocation.


def test_the_probe_never_releases_an_address_whatever_override_the_admin_accepts(integration, ipmanager, admin_client):
    ipmanager.app.take("133.31.223.5", owner="billing", note=note_for(42))
    data = {
        "name": integration.name,
        "url": integration.url,
        "username": integration.username,
        "password": "",
        "admin_username": "",
        "admin_password": "",
        "ignored_ip_types": "",
        "function_read": "ip.delete",
        "_save": "Save",
    }
    admin_client.post(reverse("admin:ipam_sync_ipmanagerintegration_change", args=[integration.pk]), data)

    admin_client.post(
        reverse("admin:ipam_sync_ipmanagerintegration_changelist"), {"action": "probe_panel", "_selected_action": [integration.pk]}
    )

    assert "133.31.223.5" in ipmanager.app.owned_by("billing")


def test_an_allocation_parameter_the_admin_accepts_never_crashes_the_allocation(integration, tariff, admin_client):
    data = {
        "name": integration.name,
        "url": integration.url,
        "username": integration.username,
        "password": "",
        "admin_username": "",
        "admin_password": "",
        "ignored_ip_types": "",
        "function_allocate_owner": "self",
        "_save": "Save",
    }
    admin_client.post(reverse("admin:ipam_sync_ipmanagerintegration_change", args=[integration.pk]), data)
    service = ordered(tariff, ips=1)
    service.refresh_from_db()  # its module's integration as the admin saved it

    with contextlib.suppress(ProvisioningError):  # refused by the panel is fine; an exception of another kind is not
        service_ips_allocate(service=service)


# An allocation reply that names an address the panel did not take.


@pytest.mark.parametrize("replied", ["2001:db8::1", "133.31.223.0", "133.31.223.255"], ids=["ipv6", "network", "broadcast"])
def test_an_address_the_allocation_reply_names_is_recorded_only_when_the_panel_took_it(integration, ipmanager, tariff, serve, replied):
    def name_another(doc):
        return doc | {"id": {"$": replied}} if "ok" in doc and "id" in doc else doc

    front(integration, serve(Rewrite(ipmanager.app, "ip.edit", reply=name_another)))
    service = ordered(tariff, ips=1)

    with contextlib.suppress(ProvisioningError):
        service_ips_allocate(service=service)

    recorded = set(IPAssignment.objects.filter(service=service, released_at__isnull=True).values_list("address", flat=True))
    taken = {entry["ip"] for entry in ipmanager.app.allocated.values() if entry["note"] == note_for(service.pk)}
    assert replied not in recorded
    assert recorded <= taken


# Open control panel.


def test_open_control_panel_refuses_an_account_that_is_no_longer_the_services(active_service, ispmanager, client):
    service = active_service()
    login = service.panel_username
    root = root_of(ispmanager.url)
    root.user_delete(login)  # deleted by hand in the panel; the login is free again
    root.user_create(name=login, password="another-customer-1", fullname="A reseller's customer", preset=PRESET, limits={})
    client.force_login(service.ordered_by)

    response = client.post(reverse("service_panel_login", args=[service.pk]))

    assert login not in ispmanager.app.login_keys.values()
    assert response.status_code == 302 and not response.url.startswith(ispmanager.url)


@pytest.mark.parametrize("doc", [None, {"error": "no keys today"}], ids=["doc-null", "error-a-string"])
def test_open_control_panel_answers_a_malformed_panel_reply_with_a_message(active_service, ispmanager, module, serve, client, doc):
    service = active_service()
    front(module, serve(Rewrite(ispmanager.app, "session.newkey", reply=lambda _doc: doc)))
    client.force_login(service.ordered_by)
    client.raise_request_exception = False

    response = client.post(reverse("service_panel_login", args=[service.pk]))

    assert response.status_code == 302
    assert response.url == reverse("service_detail", args=[service.pk])


# Replies in shapes the documents do not promise: a message, never a server error or a traceback.


def _level_not_a_number(doc):
    return {"user": {"$name": "root", "$level": "²"}}  # str.isdigit() says yes, int() says no


def _paging_null(doc):
    return doc | {"p_elems": {"$": None}}


def _rows_not_objects(doc):
    return {"elem": ["alias", "public"]}


@pytest.mark.parametrize(
    ("target", "action", "func", "reply"),
    [
        ("module", "check_connection", "whoami", _level_not_a_number),
        ("module", "probe_panel", "user", _paging_null),
        ("integration", "check_connection", "iptype", _rows_not_objects),
        ("integration", "probe_panel", "iptype", _rows_not_objects),
    ],
    ids=["level-superscript", "p_elems-null", "ipm-check-elem-strings", "ipm-probe-elem-strings"],
)
def test_admin_panel_actions_answer_a_malformed_reply_without_a_server_error(
    module, integration, ispmanager, ipmanager, serve, admin_client, target, action, func, reply
):
    obj, app = (module, ispmanager.app) if target == "module" else (integration, ipmanager.app)
    front(obj, serve(Rewrite(app, func, reply=reply)))
    admin_client.raise_request_exception = False
    opts = obj._meta

    response = admin_client.post(
        reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"), {"action": action, "_selected_action": [obj.pk]}
    )

    assert response.status_code == 302


def test_sync_accounts_stops_with_a_message_on_a_user_list_of_another_shape(module, ispmanager, serve):
    front(module, serve(Rewrite(ispmanager.app, "user", reply=lambda doc: {"elem": ["alice", "bob"]})))

    with pytest.raises(CommandError):
        call_command("sync_accounts", module.name)
    assert AccountSyncRun.objects.get(module=module).status == AccountSyncRun.Status.FAILED


# A list without the state.


def test_a_user_list_without_active_never_suspends_a_service_in_billing(module, active_service, ispmanager, serve, tasks):
    service = active_service()

    def hide_active(doc):
        for row in doc.get("elem", []):
            row.pop("active", None)
        return doc

    front(module, serve(Rewrite(ispmanager.app, "user", reply=hide_active)))

    service_action_request(service=service, action=PanelAction.SYNC)
    tasks.run_all()

    service.refresh_from_db()
    assert ispmanager.app.users[service.panel_username]["active"] is True
    assert service.status == ServiceStatus.ACTIVE


# The level's fallback to func=auth.


@pytest.mark.parametrize("panel", ["ispmanager", "ipmanager"])
def test_a_panel_without_func_auth_is_saved_with_a_warning_when_whoami_tells_no_level(serve, transactional_db, panel):
    if panel == "ispmanager":
        server = serve(ISPmanagerEmulator(admins={"root": "secret"}, whoami_level=False, missing_functions={"auth"}))
        result = module_check_connection(module=ProcessingModuleFactory(url=server.url, username="root", password="secret"))
    else:
        app = IPmanagerEmulator(admins={"admin": "secret"}, whoami_level=False, missing_functions={"auth"})
        app.add_network("133.31.223.0/24")
        app.add_user("billing", "secret", pools=["133.31.223.0-133.31.223.128"], groups=["alias"])
        server = serve(app)
        integration = IPmanagerIntegrationFactory(
            url=server.url, username="billing", password="secret", admin_username="admin", admin_password="secret"
        )
        result = integration_check_connection(integration=integration, save=False)

    assert not result.blocking
    assert "no function whoami" not in str(result.message)
