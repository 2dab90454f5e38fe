"""manage.py panel_probe and the admin's "Probe the panel": read-only compatibility reports, against the emulators over HTTP.

Each alternative the documents leave open is served by an emulator switch (no actionlist, no $level in whoami,
a user.edit form without active and fullname, paged and capped lists, Lite, a renamed ip.delete); the report must
mark it as a reader of the documents would, change nothing in the panel, and never show a password.
"""

import contextlib
import io
import json
import socket

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from billing.choices import ProductType
from ipam_sync.ipmanager.emulator import IPmanagerEmulator
from provisioning.coremanager.client import LEVEL_USER, CoreClient
from provisioning.coremanager.emulator import EmulatorServer
from provisioning.coremanager.probe import stored_report
from provisioning.ispmanager.emulator import ISPmanagerEmulator
from tests.factories import IPmanagerIntegrationFactory, ProcessingModuleFactory, TariffPlanFactory

pytestmark = pytest.mark.django_db

ISP_PASSWORD = "isp-Pr0be-secret"
IPM_PASSWORD = "ipm-Pr0be-secret"
IPM_ADMIN_PASSWORD = "ipm-admin-Pr0be-secret"
SECRETS = (ISP_PASSWORD, IPM_PASSWORD, IPM_ADMIN_PASSWORD)
# What billing calls in ISPmanager (docs/ispmanager-api.md, "Functions we use").
BILLING_CALLS = {
    "license.info",
    "whoami",
    "user",
    "user.edit",
    "user.add.finish",
    "user.suspend",
    "user.resume",
    "user.delete",
    "preset",
    "preset.edit",
    "ipaddr",
    "ipaddr.edit",
    "ipaddr.delete",
    "session.newkey",
}
ISP_READS = {"whoami", "actionlist", "license.info", "user", "user.edit", "preset", "preset.edit"}
IPM_READS = {"whoami", "actionlist", "ip", "ip.edit", "iptype"}


@pytest.fixture
def serve():
    """serve(app) -> the running server of that emulator, stopped after the test."""
    with contextlib.ExitStack() as stack:
        yield lambda app: stack.enter_context(EmulatorServer(app))


def isp(**switches) -> ISPmanagerEmulator:
    """An ISPmanager whose administrator is root, with the template "Site hosting" (25 databases, 25 web domains)."""
    app = ISPmanagerEmulator(admins={"root": ISP_PASSWORD}, **switches)
    app.add_preset("Site hosting", limit_db=25, limit_webdomains=25)
    return app


def ipm(**switches) -> IPmanagerEmulator:
    """The seed's IPmanager: user billing may take 133.31.223.0-128 in the group alias; administrator admin."""
    app = IPmanagerEmulator(admins={"admin": IPM_ADMIN_PASSWORD}, **switches)
    app.add_network("133.31.223.0/24")
    app.add_user("billing", IPM_PASSWORD, pools=["133.31.223.0-133.31.223.128"], groups=["alias"])
    return app


def add_user(server, name, fullname="Service #1"):
    """A panel account, created as billing creates one (setup, before the calls under test are recorded)."""
    CoreClient(server.url, "root", ISP_PASSWORD, timeout=(2, 5)).call(
        "user.add.finish", sok="ok", name=name, passwd="user-pass-1", confirm="user-pass-1", fullname=fullname, preset="Site hosting"
    )
    server.app.calls.clear()


def module_on(server, *, name="Shared 1", template="Site hosting", **fields):
    module = ProcessingModuleFactory(name=name, url=server.url, username="root", password=ISP_PASSWORD, **fields)
    TariffPlanFactory(processing_module=module, product_type=ProductType.VHOST, account_template=template)
    return module


def integration_on(server, *, name="IPmanager 1", admin=True, **fields):
    credentials = {"admin_username": "admin", "admin_password": IPM_ADMIN_PASSWORD} if admin else {}
    return IPmanagerIntegrationFactory(name=name, url=server.url, username="billing", password=IPM_PASSWORD, **credentials | fields)


def probe(*args):
    """Run the command: (exit code, stdout, stderr), as a shell would see them."""
    out, err = io.StringIO(), io.StringIO()
    code = 0
    try:
        call_command("panel_probe", *args, stdout=out, stderr=err)
    except CommandError as error:
        code = error.returncode
        err.write(str(error))
    return code, out.getvalue(), err.getvalue()


def findings(obj) -> dict:
    """The stored report of a module or integration: check -> (status, message, advice, details), rendered in English."""
    obj.refresh_from_db()
    return {f.check: (str(f.status), str(f.message), str(f.advice), f.details) for f in stored_report(obj).findings}


def status(report: dict, check: str) -> str:
    return report[check][0]


def closed_port() -> int:
    with socket.socket() as probe_socket:
        probe_socket.bind(("127.0.0.1", 0))
        return probe_socket.getsockname()[1]


# ISPmanager


def test_a_business_panel_as_documented_is_all_ok_and_the_report_is_kept_on_the_module(serve):
    server = serve(isp())
    add_user(server, "alice")
    module = module_on(server)

    code, out, _err = probe()

    assert code == 0
    report = findings(module)
    assert {value[0] for value in report.values()} == {"ok"}, {check: value for check, value in report.items() if value[0] != "ok"}
    assert {check.removeprefix("function:") for check in report if check.startswith("function:")} == BILLING_CALLS
    assert report["edition"][3]["edition"] == "business"
    assert {"name", "active", "owner"} <= set(report["list:user:fields"][3]["fields"])
    assert {"active", "fullname"} <= set(report["form:user.edit"][3]["fields"])
    assert report["template:Site hosting"][3]["limits"] == {"limit_db": "25", "limit_webdomains": "25"}
    assert module.probed_at is not None
    assert "Shared 1" in out and "missing: 0, different: 0, not verified: 0" in out


def test_the_probe_changes_nothing_and_calls_only_functions_that_read(serve):
    isp_server, ipm_server = serve(isp()), serve(ipm())
    add_user(isp_server, "alice")
    module_on(isp_server, template="FTP storage")  # a template the panel lacks: the probe must not create it
    ipm_server.app.take("133.31.223.7", owner="billing", note="billing service #7")
    integration_on(ipm_server)
    before = json.dumps([isp_server.app.state(), ipm_server.app.state()], sort_keys=True)

    probe()

    assert json.dumps([isp_server.app.state(), ipm_server.app.state()], sort_keys=True) == before
    for server, reads in ((isp_server, ISP_READS), (ipm_server, IPM_READS)):
        assert server.app.calls, "the probe called the panel"
        assert {func for func, _params in server.app.calls} <= reads
        assert not [params for _func, params in server.app.calls if "sok" in params]


def test_no_password_appears_in_the_output_or_the_stored_reports(serve):
    isp_server, ipm_server = serve(isp()), serve(ipm())
    add_user(isp_server, "alice")
    good = module_on(isp_server)
    wrong = ProcessingModuleFactory(name="Wrong password", url=isp_server.url, username="root", password=IPM_PASSWORD)
    integration = integration_on(ipm_server)
    wrong_admin = integration_on(ipm_server, name="Wrong admin", admin_password=ISP_PASSWORD)

    text = probe()
    as_json = probe("--json")

    for obj in (good, wrong, integration, wrong_admin):
        obj.refresh_from_db()
    stored = [json.dumps(obj.probe_report) for obj in (good, wrong, integration, wrong_admin)]
    assert text[0] == as_json[0] == 1  # the wrong passwords fail the run
    for shown in (*text[1:], *as_json[1:], *stored):
        for secret in SECRETS:
            assert secret not in shown


def test_without_actionlist_the_functions_it_reads_are_verified_and_the_others_are_not(serve):
    server = serve(isp(missing_functions={"actionlist"}))
    add_user(server, "alice")
    module = module_on(server)

    code, out, _err = probe()

    report = findings(module)
    assert code == 0
    assert status(report, "actionlist") == "different"
    for func in ("license.info", "whoami", "user", "user.edit", "preset", "preset.edit"):
        assert status(report, f"function:{func}") == "ok"
    writes = ("user.add.finish", "user.suspend", "user.resume", "user.delete", "ipaddr.edit", "ipaddr.delete", "session.newkey")
    for func in ("ipaddr", *writes):  # ipaddr reads, but the probe has no reason to call it
        assert status(report, f"function:{func}") == "unknown"
        assert f"{func} (" in out
    assert "not verified: 8" in out


def test_a_whoami_without_level_is_a_difference_and_the_level_comes_from_auth(serve):
    server = serve(isp(whoami_level=False))
    module = module_on(server)

    code, _out, _err = probe()

    report = findings(module)
    assert code == 0
    assert status(report, "caller:whoami") == "different"
    assert (status(report, "caller:auth"), report["caller:auth"][1]) == ("ok", "func=auth: level 29.")
    assert status(report, "caller:level") == "ok"


def test_a_login_of_a_panel_user_is_not_enough(serve):
    server = serve(isp())
    add_user(server, "alice")
    module = ProcessingModuleFactory(url=server.url, username="alice", password="user-pass-1")

    code, _out, _err = probe()

    report = findings(module)
    assert code == 1
    assert status(report, "caller:level") == "missing"
    assert f"level {LEVEL_USER}" in report["caller:level"][1]


def test_a_reseller_login_is_reported_as_enough_for_accounts_only(serve):
    server = serve(ISPmanagerEmulator(resellers={"reseller": ISP_PASSWORD}))
    module = ProcessingModuleFactory(url=server.url, username="reseller", password=ISP_PASSWORD)

    probe()

    report = findings(module)
    assert status(report, "caller:level") == "different"
    assert "administrator" in report["caller:level"][2]


def test_a_form_without_active_and_fullname_is_flagged_while_the_list_has_active(serve):
    server = serve(isp(form_active=False))
    add_user(server, "alice")
    module = module_on(server)

    code, _out, _err = probe()

    report = findings(module)
    assert code == 0
    assert status(report, "form:user.edit:active") == "different"
    assert status(report, "form:user.edit:fullname") == "different"
    assert "user list" in report["form:user.edit:active"][1]
    assert status(report, "list:user:fields") == "ok"


@pytest.mark.parametrize(
    ("missing", "expected", "exit_code"),
    [("user.suspend", "missing", 1), ("user.edit", "missing", 1), ("license.info", "missing", 1), ("session.newkey", "different", 0)],
)
def test_a_function_the_panel_lacks_is_missing_when_billing_needs_it(serve, missing, expected, exit_code):
    server = serve(isp(missing_functions={missing}))
    add_user(server, "alice")
    module = module_on(server)

    code, _out, err = probe()

    assert status(findings(module), f"function:{missing}") == expected
    assert code == exit_code
    if exit_code:
        assert "Shared 1" in err


@pytest.mark.parametrize(("edition", "expected"), [("lite", "ok"), ("business", "missing")])
def test_address_functions_are_needed_on_business_only(serve, edition, expected):
    server = serve(isp(edition=edition, missing_functions={"ipaddr.edit", "ipaddr.delete"}))
    module = module_on(server)

    probe()

    report = findings(module)
    assert report["edition"][3]["edition"] == edition
    assert status(report, "function:ipaddr.edit") == status(report, "function:ipaddr.delete") == expected


@pytest.mark.parametrize(
    ("text", "edition", "expected"),
    [("ISPmanager 5 business (trial)", "business", "ok"), ("ISPmanager Lite 5.290", "lite", "ok"), ("", "lite", "different")],
)
def test_the_edition_text_is_reported_as_the_panel_says_it(serve, text, edition, expected):
    server = serve(isp(license_text=text))
    module = module_on(server)

    probe()

    message_status, message, _advice, details = findings(module)["edition"]
    assert message_status == expected
    assert edition.capitalize() in message
    if text:
        assert details["panel_name"] == text


def test_a_paged_user_list_is_read_page_by_page(serve):
    server = serve(isp(page_size=2))
    for number in range(5):
        add_user(server, f"user{number}")
    module = module_on(server)

    code, _out, _err = probe()

    report = findings(module)
    assert code == 0
    assert status(report, "list:user:paging") == "ok"
    assert report["list:user:paging"][3]["paging"] == ["p_cnt", "p_elems", "p_num"]
    assert report["list:user:fields"][3]["rows"] == 5


def test_a_capped_list_that_cannot_be_read_whole_fails_the_probe(serve):
    server = serve(isp(page_size=2, short_pages=True))
    for number in range(5):
        add_user(server, f"user{number}")
    module = module_on(server)

    code, _out, _err = probe()

    report = findings(module)
    assert code == 1
    assert status(report, "list:user:paging") == "missing"
    assert "Number of records" in report["list:user:paging"][2]


def test_a_template_the_panel_lacks_is_reported_and_not_created(serve):
    server = serve(isp())
    module = module_on(server, template="FTP storage")

    code, _out, _err = probe()

    finding = findings(module)["template:FTP storage"]
    assert code == 0
    assert finding[0] == "different"
    assert "FTP storage" in finding[2]
    assert "FTP storage" not in server.app.presets


@pytest.mark.parametrize("trouble", ["unreachable", "wrong password"])
def test_a_panel_that_cannot_be_asked_is_reported_as_such_and_fails(serve, trouble):
    server = serve(isp())
    if trouble == "unreachable":
        module = ProcessingModuleFactory(name="Gone", url=f"http://127.0.0.1:{closed_port()}/ispmgr", password=ISP_PASSWORD)
    else:
        module = ProcessingModuleFactory(name="Gone", url=server.url, username="root", password="not-the-password")

    code, out, err = probe("Gone")

    report = findings(module)
    assert code == 1
    assert list(report) == ["connection"]
    assert status(report, "connection") == "missing"
    assert ("cannot connect" if trouble == "unreachable" else "wrong username or password") in report["connection"][1]
    assert "could not be probed" in out
    assert "Traceback" not in out + err


def test_an_unknown_name_is_refused_with_exit_code_2_and_nothing_is_probed(serve):
    module = module_on(serve(isp()))

    code, _out, err = probe("Shared 1", "No such panel")

    assert code == 2
    assert "No such panel" in err
    module.refresh_from_db()
    assert module.probed_at is None


def test_named_panels_only_are_probed(serve):
    server = serve(isp())
    first, second = module_on(server, name="First"), module_on(server, name="Second")

    code, out, _err = probe("Second")

    first.refresh_from_db()
    second.refresh_from_db()
    assert code == 0
    assert (first.probed_at, bool(second.probed_at)) == (None, True)
    assert "Second" in out and "First" not in out


def test_json_output_has_one_report_per_panel_with_codes_and_text(serve):
    module_on(serve(isp()), name="Shared 1")
    integration_on(serve(ipm()), name="IPmanager 1")

    code, out, _err = probe("--json")

    reports = json.loads(out)
    assert code == 0
    assert [(report["name"], report["panel"], report["ok"]) for report in reports] == [
        ("Shared 1", "ispmanager", True),
        ("IPmanager 1", "ipmanager", True),
    ]
    for report in reports:
        assert report["findings"]
        assert {finding["status"] for finding in report["findings"]} <= {"ok", "different", "missing", "unknown"}
        assert all(finding["message"] for finding in report["findings"])


def test_the_stored_report_keeps_message_ids_and_parameters_not_sentences(serve):
    module = module_on(serve(isp()))

    probe()

    module.refresh_from_db()
    level = next(finding for finding in module.probe_report["findings"] if finding["check"] == "caller:level")
    assert level["message"]["msgid"] == "%(user)s has level %(level)d (%(role)s): enough."
    assert level["message"]["params"]["level"] == 29
    assert level["message"]["params"]["role"] == {"msgid": "administrator", "params": {}}


# IPmanager


def test_an_ipmanager_as_documented_is_all_ok_with_a_sample_of_the_users_addresses(serve):
    server = serve(ipm())
    taken = [f"133.31.223.{n}" for n in range(10, 17)]
    for address in taken:
        server.app.take(address, owner="billing", domain="www.example.com.", note="billing service #3")
    integration = integration_on(server)

    code, _out, _err = probe()

    report = findings(integration)
    assert code == 0
    assert {value[0] for value in report.values()} == {"ok"}, {check: value for check, value in report.items() if value[0] != "ok"}
    purposes = {"whoami", "list", "read", "allocate", "release", "groups"}
    assert {check.removeprefix("function:") for check in report if check.startswith("function:")} == purposes
    sample = report["addresses"][3]["sample"]
    assert len(sample) == 5 and {row["ip"] for row in sample} <= set(taken)
    assert report["groups"][3]["groups"] == ["alias"]
    assert "owner" in report["admin:list:fields"][3]["fields"]
    assert status(report, "admin:level") == "ok"


def test_a_renamed_release_says_which_override_to_set_and_the_override_fixes_it(serve):
    server = serve(ipm(rename={"ip.delete": "ip.free"}))
    integration = integration_on(server)

    code, _out, _err = probe()

    finding_status, message, advice, details = findings(integration)["function:release"]
    assert code == 1
    assert finding_status == "missing"
    assert "ip.delete" in message
    assert '"Release an address"' in advice and "Advanced" in advice and "ip.free" in advice
    assert details["candidates"] == ["ip.free"]

    integration.function_names = {"release": "ip.free"}
    integration.save()
    code, _out, _err = probe()

    assert code == 0
    assert status(findings(integration), "function:release") == "ok"


def test_an_ipmanager_without_actionlist_leaves_release_unverified(serve):
    server = serve(ipm(missing_functions={"actionlist"}))
    integration = integration_on(server)

    code, _out, _err = probe()

    report = findings(integration)
    assert code == 0
    assert status(report, "actionlist") == "different"
    assert status(report, "function:release") == "unknown"
    assert "Release an address" in report["function:release"][2]
    # Allocation is ip.edit, which the probe read: the function exists.
    assert status(report, "function:read") == status(report, "function:allocate") == "ok"


def test_a_user_without_the_alias_group_is_a_difference(serve):
    app = ipm()
    app.add_user("billing", IPM_PASSWORD, pools=["133.31.223.0-133.31.223.128"], groups=["public"])
    integration = integration_on(serve(app), admin=False)

    code, _out, _err = probe()

    finding = findings(integration)["groups"]
    assert code == 0
    assert (finding[0], finding[3]["groups"]) == ("different", ["public"])
    assert "alias" in finding[2]


def test_administrator_credentials_that_fail_or_are_not_an_administrators_fail_the_probe(serve):
    app = ipm()
    app.add_user("clerk", "clerk-pass", groups=["alias"])
    server = serve(app)
    wrong = integration_on(server, name="Wrong", admin_password="not-it")
    clerk = integration_on(server, name="Clerk", admin_username="clerk", admin_password="clerk-pass")

    code, _out, _err = probe()

    assert code == 1
    assert status(findings(wrong), "admin:connection") == "missing"
    assert status(findings(wrong), "caller:level") == "ok"  # the integration user was probed all the same
    assert status(findings(clerk), "admin:level") == "missing"


# Admin


def test_the_admin_action_probes_the_selected_modules_and_the_change_page_shows_the_report(serve, admin_client):
    server = serve(isp())
    probed, other = module_on(server, name="Probed"), module_on(server, name="Other", template="FTP storage")

    response = admin_client.post(
        reverse("admin:provisioning_processingmodule_changelist"),
        {"action": "probe_panel", "_selected_action": [probed.pk]},
        follow=True,
    )

    assert response.status_code == 200
    assert "Probed: missing: 0" in response.content.decode()
    other.refresh_from_db()
    assert other.probed_at is None
    page = admin_client.get(reverse("admin:provisioning_processingmodule_change", args=[probed.pk])).content.decode()
    assert "Compatibility report" in page
    assert "Template &quot;Site hosting&quot;: limits limit_db=25, limit_webdomains=25." in page
    unprobed = admin_client.get(reverse("admin:provisioning_processingmodule_change", args=[other.pk])).content.decode()
    assert "Not probed yet" in unprobed


def test_the_admin_action_on_integrations_reports_what_is_missing_and_the_override_to_set(serve, admin_client):
    integration = integration_on(serve(ipm(rename={"ip.delete": "ip.free"})))

    response = admin_client.post(
        reverse("admin:ipam_sync_ipmanagerintegration_changelist"),
        {"action": "probe_panel", "_selected_action": [integration.pk]},
        follow=True,
    )

    assert "missing: 1" in response.content.decode()
    page = admin_client.get(reverse("admin:ipam_sync_ipmanagerintegration_change", args=[integration.pk])).content.decode()
    assert "MISSING" in page and "ip.free" in page
    for secret in SECRETS:
        assert secret not in page
