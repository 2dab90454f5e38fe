"""What the documents leave unconfirmed about ISPmanager, each alternative served by the emulator (docs/ispmanager-api.md).

The caller's level in whoami or only in func=auth (or in neither), a user.edit form without `active`
and `fullname`, paged and capped lists, and the many ways license.info names the edition: billing
must work, or stop safely, with each of them.
"""

import contextlib

import pytest

from billing.choices import PanelAction, ProductType, ServiceStatus
from billing.services import service_action_request, service_mark_paid
from provisioning.choices import OperationStatus
from provisioning.coremanager.emulator import EmulatorServer
from provisioning.coremanager.errors import CutOff
from provisioning.ispmanager.client import ISPmanagerClient
from provisioning.ispmanager.emulator import ISPmanagerEmulator
from provisioning.models import Operation
from provisioning.services import module_check_connection
from tests.factories import ProcessingModuleFactory

PRESET = "Site hosting"
TIMEOUT = (2, 5)
UNVERIFIED = "Could not verify the account's level: the panel tells it neither in whoami nor in auth."


class NoLevelAnywhere(ISPmanagerEmulator):
    """A panel that tells the caller's level neither in whoami (`whoami_level=False`) nor in the func=auth reply."""

    def __init__(self, **kwargs):
        super().__init__(whoami_level=False, **kwargs)

    def _auth(self, params, address):
        doc = super()._auth(params, address)
        del doc["auth"]["$level"]
        return doc


@pytest.fixture
def serve():
    """serve(app) -> the running server of that emulator, stopped after the test."""
    with contextlib.ExitStack() as stack:

        def start(app):
            app.add_preset(PRESET, limit_db=25, limit_webdomains=25)
            return stack.enter_context(EmulatorServer(app))

        yield start


def admin_of(server) -> ISPmanagerClient:
    return ISPmanagerClient(server.url, "root", "secret", timeout=TIMEOUT)


def add_user(server, name, password="user-pass-1", fullname="Someone Else"):
    admin_of(server).user_create(name=name, password=password, fullname=fullname, preset=PRESET, limits={})


def check(server, username="root", password="secret", product_type=ProductType.VHOST):
    module = ProcessingModuleFactory(url=server.url, username=username, password=password, product_type=product_type)
    result = module_check_connection(module=module)
    module.refresh_from_db()
    return module, result


# Levels: whoami without $level, auth with it; neither; root at 30.


@pytest.mark.django_db
@pytest.mark.parametrize("whoami_level", [True, False], ids=["level-in-whoami", "level-in-auth-only"])
def test_an_administrator_is_accepted_wherever_the_panel_tells_its_level(serve, whoami_level):
    server = serve(ISPmanagerEmulator(whoami_level=whoami_level))

    module, result = check(server)

    assert (result.ok, result.warning, result.blocking) == (True, False, False)
    assert module.caller_level == "administrator"
    assert module.check_message == "Connected to ISPmanager Business as administrator root."


@pytest.mark.django_db
def test_a_panel_user_is_refused_when_only_auth_tells_its_level(serve):
    server = serve(ISPmanagerEmulator(whoami_level=False))
    add_user(server, "alice")

    module, result = check(server, username="alice", password="user-pass-1")

    assert (result.ok, result.blocking) == (False, True)
    assert module.caller_level == "user"
    assert module.check_message == "alice is an ISPmanager user account: billing needs an administrator to manage accounts."


@pytest.mark.django_db
@pytest.mark.parametrize("product_type", [ProductType.VHOST, ProductType.STORAGE])
def test_a_level_told_nowhere_is_a_warning_not_a_refusal(serve, product_type):
    server = serve(NoLevelAnywhere())

    module, result = check(server, product_type=product_type)

    assert (result.ok, result.warning, result.blocking) == (True, True, False)
    assert (module.check_ok, module.caller_level, module.edition) == (True, "", "business")
    assert str(module.check_message).startswith("Connected to ISPmanager Business as root. " + UNVERIFIED)


@pytest.mark.django_db
def test_a_level_told_nowhere_is_not_read_as_a_panel_user_even_for_one(serve):
    """Without a level billing cannot tell; the admin is warned, and the panel refuses what the account may not do."""
    server = serve(NoLevelAnywhere())
    add_user(server, "alice")

    _module, result = check(server, username="alice", password="user-pass-1")

    assert (result.ok, result.blocking) == (True, False)
    assert UNVERIFIED in result.message


@pytest.mark.django_db
@pytest.mark.parametrize("whoami_level", [True, False], ids=["level-in-whoami", "level-in-auth-only"])
@pytest.mark.parametrize("product_type", [ProductType.VHOST, ProductType.STORAGE])
def test_root_at_level_30_counts_as_an_administrator(serve, whoami_level, product_type):
    server = serve(ISPmanagerEmulator(roots={"boss": "boss-pass-1"}, whoami_level=whoami_level))

    module, result = check(server, username="boss", password="boss-pass-1", product_type=product_type)

    assert (result.ok, result.warning, result.blocking) == (True, False, False)
    assert module.caller_level == "root"
    assert module.check_message == "Connected to ISPmanager Business as root boss."


# Edition: "business" in any case is Business, anything else Lite, never an error.


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("edition", "text", "expected"),
    [
        ("lite", "ISPmanager Lite 5.290", "lite"),
        ("lite", "ispmanager lite", "lite"),
        ("lite", "BILLmanager-something", "lite"),
        ("lite", "", "lite"),
        ("business", "ISPmanager Business", "business"),
        ("business", "ISPMANAGER BUSINESS 6", "business"),
    ],
)
def test_the_edition_is_business_when_license_info_says_so_in_any_case_otherwise_lite(serve, edition, text, expected):
    server = serve(ISPmanagerEmulator(edition=edition, license_text=text))

    module, result = check(server)

    assert admin_of(server).edition() == expected
    assert (result.ok, result.blocking, result.edition, module.edition) == (True, False, expected, expected)
    assert result.edition_text == (f"{text} (ispmgr)" if text else "ispmgr")


@pytest.mark.django_db
def test_a_text_that_names_no_edition_is_taken_as_lite_and_the_check_says_what_the_panel_said(serve):
    server = serve(ISPmanagerEmulator(edition="lite", license_text="BILLmanager-something"))

    module, result = check(server)

    assert result.warning
    assert str(module.check_message) == (
        "Connected to ISPmanager Lite as administrator root. Make sure disk quotas are enabled on the server: without them the disk "
        "limit has no effect. The panel calls itself “BILLmanager-something (ispmgr)”, which does not say Business: taken as Lite."
    )


@pytest.mark.django_db
def test_a_lite_text_is_not_repeated_in_the_check(serve):
    server = serve(ISPmanagerEmulator(edition="lite", license_text="ISPmanager Lite 5.290"))

    _module, result = check(server)

    assert "calls itself" not in result.message


# Paged and capped lists.


@pytest.mark.parametrize("page_size", [1, 2, 3, 5, 7])
def test_users_reads_every_page(serve, page_size):
    server = serve(ISPmanagerEmulator(page_size=page_size))
    names = [f"user{n}" for n in range(5)]
    for name in names:
        add_user(server, name)

    assert sorted(row["name"] for row in admin_of(server).users()) == names
    pages = [params.get("p_num", "1") for func, params in server.app.calls if func == "user"]
    assert pages == [str(number) for number in range(1, -(-5 // page_size) + 1)]


def test_a_users_list_with_short_pages_is_cut_off(serve):
    server = serve(ISPmanagerEmulator(page_size=2, short_pages=True))
    for n in range(5):
        add_user(server, f"user{n}")

    with pytest.raises(CutOff):
        admin_of(server).users()


def test_the_state_of_a_user_on_a_later_page_is_read_from_the_list(serve):
    server = serve(ISPmanagerEmulator(page_size=2, form_active=False))
    for n in range(5):
        add_user(server, f"user{n}")
    admin_of(server).user_suspend("user4")

    client = admin_of(server)
    assert [client.user_active(f"user{n}") for n in range(5)] == [True, True, True, True, False]
    assert client.user_active("nobody") is None


# Accounts on a panel whose user.edit form has neither `active` nor `fullname`, and with paged lists.


@pytest.fixture
def variant(panel):
    """The conftest's panel (Business, root / secret, "Site hosting"), its switches flipped by each test."""
    return panel.app


@pytest.fixture
def active_service(make_service, variant, tasks):
    service = make_service()
    service_mark_paid(service=service)
    tasks.run_all()
    service.refresh_from_db()
    assert service.status == ServiceStatus.ACTIVE
    return service


def sync(service, tasks) -> Operation:
    service_action_request(service=service, action=PanelAction.SYNC)
    tasks.run_all()
    service.refresh_from_db()
    return Operation.objects.get(service=service, action=PanelAction.SYNC)


@pytest.mark.parametrize("page_size", [0, 1], ids=["one-list", "pages-of-one"])
@pytest.mark.parametrize(
    ("active", "status", "state"), [(True, ServiceStatus.ACTIVE, "active"), (False, ServiceStatus.SUSPENDED, "suspended")]
)
def test_sync_reads_the_state_from_the_list_when_the_form_has_no_active(
    active_service, panel, variant, tasks, page_size, active, status, state
):
    for n in range(3):  # others before and after it in the list
        variant.users[f"other{n}"] = variant.users[active_service.panel_username] | {"name": f"other{n}"}
    variant.form_active, variant.page_size = False, page_size
    variant.users[active_service.panel_username]["active"] = active
    assert "active" not in admin_of(panel).user(active_service.panel_username)

    operation = sync(active_service, tasks)

    assert operation.status == OperationStatus.DONE
    assert active_service.status == status
    assert str(operation.result).startswith(f"{active_service.panel_username}: {state}; ")
    assert "limit_db=10" in operation.result


def test_a_sync_on_a_cut_off_list_changes_nothing(active_service, variant, tasks, settings):
    settings.PROVISIONING_MAX_ATTEMPTS = 1
    variant.page_size, variant.short_pages = 1, True
    variant.users[active_service.panel_username]["active"] = False

    operation = sync(active_service, tasks)

    assert operation.status == OperationStatus.FAILED
    assert "is incomplete" in operation.last_error
    assert active_service.status == ServiceStatus.ACTIVE


def test_a_sync_of_an_account_gone_from_the_panel_says_so(active_service, variant, tasks):
    variant.form_active = False
    del variant.users[active_service.panel_username]

    operation = sync(active_service, tasks)

    assert f"The account {active_service.panel_username} does not exist in the panel." == operation.result


def open_with_the_create_reply_lost(make_service, variant, tasks):
    service = make_service()
    variant.faults.drop_reply_next(func="user.add.finish")
    service_mark_paid(service=service)
    tasks.run_all()
    service.refresh_from_db()
    return service


def test_an_account_an_earlier_attempt_made_is_adopted_by_this_operations_password_when_the_form_has_no_fullname(
    make_service, variant, tasks
):
    variant.form_active = False

    service = open_with_the_create_reply_lost(make_service, variant, tasks)

    assert service.status == ServiceStatus.ACTIVE
    assert list(variant.users) == [service.panel_username] == [f"user{service.pk}"]
    assert variant.users[service.panel_username]["password"] == service.panel_password
    assert Operation.objects.get(service=service, action=PanelAction.OPEN).attempts == 2


@pytest.mark.parametrize(
    ("owner", "same_password"), [("root", False), ("res", True)], ids=["ours-by-owner-not-by-password", "another-owners-with-our-password"]
)
def test_somebody_elses_account_under_the_login_is_never_adopted_when_the_form_has_no_fullname(
    make_service, variant, tasks, owner, same_password
):
    """Ours only if we own it and it takes this operation's password: the one an earlier attempt sent."""
    variant.form_active = False
    service = make_service()
    login = f"user{service.pk}"  # what the tariff's username template makes of it
    service_mark_paid(service=service)
    theirs = Operation.objects.get(service=service, action=PanelAction.OPEN).secret if same_password else "theirs-pass-1"
    variant.users[login] = {
        "name": login, "password": theirs, "fullname": "Someone Else", "preset": PRESET, "active": True, "limits": {}, "owner": owner,
    }  # fmt: skip

    tasks.run_all()
    service.refresh_from_db()

    assert service.status == ServiceStatus.ACTIVE
    assert service.panel_username == f"{login}1"
    assert variant.users[login]["limits"] == {}
    assert variant.users[login]["password"] == theirs
