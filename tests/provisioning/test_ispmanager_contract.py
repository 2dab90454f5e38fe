"""ISPmanagerClient against the in-process emulator over real HTTP (docs/ispmanager-api.md).

The client is only as right as the emulator it is tested against: these tests pin what both
speak — editions, levels, users, templates, the documented error types, transport faults and
that secrets never leave the call.
"""

import logging
import socket

import pytest

from provisioning.coremanager.client import LEVEL_ADMIN, LEVEL_RESELLER, LEVEL_ROOT, LEVEL_USER
from provisioning.coremanager.emulator import EmulatorServer
from provisioning.coremanager.errors import (
    AccessDenied,
    AlreadyExists,
    AuthFailed,
    CutOff,
    InvalidValue,
    NotAPanel,
    NotFound,
    PanelFailure,
    PermanentError,
    ProvisioningError,
    Timeout,
    TLSFailed,
    TransientError,
    Unreachable,
)
from provisioning.ispmanager.client import ISPmanagerClient, limits_of
from provisioning.ispmanager.emulator import ISPmanagerEmulator

PRESET = "Site hosting"
TIMEOUT = (2, 5)
ADMIN = ("root", "secret")
RESELLER = ("res", "res-pass-1")
USER_PASSWORD = "alice-pass-1"


def build(edition="business", **kwargs) -> ISPmanagerEmulator:
    """An emulator like tests/conftest.py's (administrator root / secret) with the seed's template."""
    app = ISPmanagerEmulator(edition=edition, admins=dict([ADMIN]), **kwargs)
    app.add_preset(PRESET, limit_db=25, limit_webdomains=25)
    return app


@pytest.fixture
def app(ispmanager):
    """tests/conftest.py's Business, with the seed's template: "Site hosting", 25 databases and 25 web domains."""
    ispmanager.app.add_preset(PRESET, limit_db=25, limit_webdomains=25)
    return ispmanager.app


@pytest.fixture
def reseller_panel():
    """A Business of its own with the reseller res."""
    with EmulatorServer(build(resellers=dict([RESELLER]))) as server:
        yield server


@pytest.fixture
def lite():
    with EmulatorServer(build("lite")) as server:
        yield server


def login(server, *credentials, **kwargs):
    """A client of the server as LOGIN, PASSWORD (the administrator when not given)."""
    return ISPmanagerClient(server.url, *(credentials or ADMIN), **{"timeout": TIMEOUT} | kwargs)


@pytest.fixture
def client(ispmanager, app):
    return login(ispmanager)


def create(client, name="alice", password=USER_PASSWORD, preset=PRESET, **limits):
    client.user_create(name=name, password=password, fullname="Alice Example", preset=preset, limits=limits)


def raises(cls, call, *args, **kwargs) -> ProvisioningError:
    with pytest.raises(cls) as info:
        call(*args, **kwargs)
    return info.value


# A. The client's functions


@pytest.mark.parametrize("edition", ["lite", "business"])
def test_edition_is_read_from_license_info(edition):
    with EmulatorServer(build(edition)) as server:
        assert login(server).edition() == edition


def test_license_text_is_the_panels_own_words():
    with EmulatorServer(build("lite", license_text="ISPmanager Lite 5.290")) as server:
        assert login(server).license_text() == "ISPmanager Lite 5.290 (ispmgr)"


def test_whoami_of_an_administrator(client):
    assert client.whoami() == ("root", LEVEL_ADMIN)
    assert client.caller() == ("root", LEVEL_ADMIN)


def test_root_is_level_30():
    with EmulatorServer(ISPmanagerEmulator(roots={"boss": "boss-pass-1"})) as server:
        assert login(server, "boss", "boss-pass-1").caller() == ("boss", LEVEL_ROOT)


def test_whoami_without_a_level_says_none_and_the_callers_level_comes_from_auth():
    with EmulatorServer(build(whoami_level=False)) as server:
        client = login(server)
        assert client.whoami() == ("root", None)
        assert client.caller() == ("root", LEVEL_ADMIN)


def test_whoami_of_a_reseller_on_business(reseller_panel):
    assert login(reseller_panel, *RESELLER).whoami() == ("res", LEVEL_RESELLER)


def test_whoami_of_a_panel_user_logging_in_with_its_own_password(ispmanager, client):
    create(client)
    assert login(ispmanager, "alice", USER_PASSWORD).whoami() == ("alice", LEVEL_USER)


def test_user_create_with_preset_takes_its_limits_overridden_by_the_given_ones(client, app):
    create(client, limit_db=10)
    user = app.users["alice"]
    assert (user["preset"], user["owner"], user["active"]) == (PRESET, "root", True)
    assert user["limits"] == {"limit_db": "10", "limit_webdomains": "25"}


def test_user_returns_its_fields_with_limits(client):
    create(client, limit_db=10, limit_shell=False)
    user = client.user("alice")
    assert {key: user[key] for key in ("name", "fullname", "preset", "active", "owner")} == {
        "name": "alice",
        "fullname": "Alice Example",
        "preset": PRESET,
        "active": "on",
        "owner": "root",
    }
    assert limits_of(user) == {"limit_db": "10", "limit_webdomains": "25", "limit_shell": "off"}
    assert "password" not in user


def test_user_is_none_when_missing(client):
    assert client.user("nobody") is None


def test_users_lists_owner_on_business(reseller_panel):
    reseller = login(reseller_panel, *RESELLER)
    create(reseller, "bob")
    create(login(reseller_panel), "carol")
    assert {row["name"]: (row["owner"], row["active"], row["level"]) for row in login(reseller_panel).users()} == {
        "bob": ("res", "on", "16"),
        "carol": ("root", "on", "16"),
    }
    assert [row["name"] for row in reseller.users()] == ["bob"]  # a reseller sees its own users only


def test_users_lists_no_owner_on_lite(lite):
    client = login(lite)
    create(client)
    [row] = client.users()
    assert row["name"] == "alice"
    assert "owner" not in row


def test_user_edit_changes_limits_and_keeps_the_others(client, app):
    create(client, limit_db=10)
    client.user_edit("alice", limit_db=3, limit_quota=2048)
    assert app.users["alice"]["limits"] == {"limit_db": "3", "limit_webdomains": "25", "limit_quota": "2048"}


def test_user_set_password_lets_the_user_log_in_with_the_new_one(ispmanager, client):
    create(client)
    client.user_set_password("alice", "alice-pass-2")
    assert login(ispmanager, "alice", "alice-pass-2").whoami() == ("alice", LEVEL_USER)
    raises(AuthFailed, login(ispmanager, "alice", USER_PASSWORD).whoami)


def test_user_suspend_and_resume_toggle_active(ispmanager, client, app):
    create(client)
    client.user_suspend("alice")
    assert app.users["alice"]["active"] is False
    assert client.user("alice")["active"] == "off"
    raises(AuthFailed, login(ispmanager, "alice", USER_PASSWORD).whoami)
    client.user_resume("alice")
    assert app.users["alice"]["active"] is True
    assert login(ispmanager, "alice", USER_PASSWORD).whoami() == ("alice", LEVEL_USER)


def test_suspend_and_resume_take_the_group_form_of_elid(client, app):
    create(client, "alice")
    create(client, "bob")
    client.call("user.suspend", elid="alice, bob")
    assert [user["active"] for user in app.users.values()] == [False, False]
    client.call("user.resume", elid="alice, bob")
    assert [user["active"] for user in app.users.values()] == [True, True]


def test_accepts_login_tells_a_users_own_password_from_another(client):
    create(client)
    assert client.accepts_login("alice", USER_PASSWORD) is True
    assert client.accepts_login("alice", "not-hers-1") is False
    assert client.accepts_login("nobody", USER_PASSWORD) is False
    assert client.caller() == ("root", LEVEL_ADMIN)  # the client itself still logs in as itself


def test_ip_assign_and_unassign_on_business_unassign_already_gone_is_false(client, app):
    create(client)
    client.ip_assign("133.31.223.7", "alice")
    assert app.ip_addresses == {"133.31.223.7": {"owner": "alice", "iprole": "assigned"}}
    assert client.ip_unassign("133.31.223.7") is True
    assert app.ip_addresses == {}
    assert client.ip_unassign("133.31.223.7") is False


@pytest.mark.parametrize("address", ["", " ", None])
def test_ip_assign_refuses_an_empty_address_before_sending_it(client, app, address):
    create(client)
    error = raises(PermanentError, client.ip_assign, address, "alice")
    assert "empty" in str(error.message)
    assert app.ip_addresses == {}
    assert "ipaddr.edit" not in [func for func, _params in app.calls]


def test_user_delete_is_true_then_false_when_already_gone(client, app):
    create(client)
    assert client.user_delete("alice") is True
    assert "alice" not in app.users
    assert client.user_delete("alice") is False


def test_preset_reads_the_template_limits(client):
    assert client.preset(PRESET) == {"name": PRESET, "limit_db": "25", "limit_webdomains": "25"}


@pytest.mark.parametrize("name", ["No such template", None])
def test_preset_is_none_when_missing_or_unnamed(client, name):
    assert client.preset(name) is None


def test_preset_create_without_limits_is_unlimited(client, app):
    client.preset_create("Unlimited")
    assert app.presets["Unlimited"] == {}
    assert limits_of(client.preset("Unlimited")) == {}


def test_preset_create_with_limits(client):
    client.preset_create("Small", {"limit_db": 1, "limit_ssl": True})
    assert limits_of(client.preset("Small")) == {"limit_db": "1", "limit_ssl": "on"}


def test_preset_create_by_a_reseller_is_refused_with_access(reseller_panel):
    raises(AccessDenied, login(reseller_panel, *RESELLER).preset_create, "Mine")
    assert "Mine" not in reseller_panel.app.presets


@pytest.mark.parametrize(
    ("kwargs", "kind", "obj"),
    [
        ({"name": "alice"}, AlreadyExists, "user"),  # created once below, so the second time is taken
        ({"name": "Bad Name!"}, InvalidValue, "name"),
        ({"name": "dave", "preset": "No such template"}, InvalidValue, "preset"),
    ],
)
def test_user_create_errors_are_permanent_and_typed(client, app, kwargs, kind, obj):
    create(client)
    error = raises(kind, create, client, **kwargs)
    assert isinstance(error, PermanentError)
    assert error.object == obj
    assert list(app.users) == ["alice"]


def test_wrong_password_is_a_permanent_auth_error_with_a_clear_message(ispmanager):
    error = raises(AuthFailed, login(ispmanager, "root", "wrong").whoami)
    assert isinstance(error, PermanentError)
    assert str(error.message) == "wrong username or password (Invalid username or password)"


def test_a_panel_user_listing_users_is_refused_with_access(ispmanager, client):
    create(client)
    raises(AccessDenied, login(ispmanager, "alice", USER_PASSWORD).users)


def test_suspending_a_missing_user_is_not_found(client):
    error = raises(NotFound, client.user_suspend, "nobody")
    assert error.object == "users"


def test_reading_a_missing_user_is_none_and_editing_one_is_not_found(client):
    assert client.user("nobody") is None
    raises(NotFound, client.user_edit, "nobody", limit_db=1)


# B. Transport and faults


def test_panel_down_is_a_transient_connection_error(client, app):
    app.faults.down = True
    raises(Unreachable, client.whoami)


def test_reply_slower_than_the_read_timeout_is_a_transient_timeout(ispmanager, app):
    app.faults.delay = 2
    error = raises(Timeout, login(ispmanager, timeout=(2, 1)).whoami)
    assert isinstance(error, TransientError)
    assert "within 1 " in error.message


def test_fail_next_two_gives_two_http_503_then_success(ispmanager, client, app):
    app.faults.fail_next(2)
    for _ in range(2):
        error = raises(PanelFailure, client.whoami)
        assert str(error.message) == f"127.0.0.1:{ispmanager.port} answered HTTP 503"
    assert client.whoami() == ("root", LEVEL_ADMIN)


def test_a_panel_error_type_of_its_own_is_a_transient_panel_failure_in_its_words(client, app):
    app.faults.fail_next(1, error_type="sys")
    error = raises(PanelFailure, client.whoami)
    assert isinstance(error, TransientError)
    assert str(error.message) == "Injected sys error"
    assert client.whoami() == ("root", LEVEL_ADMIN)


def test_fail_next_of_one_function_leaves_the_others_alone(client, app):
    create(client)
    app.faults.fail_next(1, func="user.suspend")
    assert client.whoami() == ("root", LEVEL_ADMIN)
    client.user_resume("alice")
    raises(PanelFailure, client.user_suspend, "alice")
    assert app.users["alice"]["active"] is True
    client.user_suspend("alice")
    assert app.users["alice"]["active"] is False


def test_a_dropped_reply_is_transient_though_the_user_was_created(client, app):
    app.faults.drop_reply_next(func="user.add.finish")
    raises(Unreachable, create, client)
    assert app.users["alice"]["limits"] == {"limit_webdomains": "25", "limit_db": "25"}  # act, then drop
    raises(AlreadyExists, create, client)  # what the retry then meets


def test_a_reply_cut_off_halfway_is_transient(client, app):
    app.faults.cut_reply_next(func="whoami")
    error = raises(CutOff, client.whoami)
    assert isinstance(error, TransientError)
    assert "was cut off" in str(error.message)


def test_a_wrong_path_is_permanently_not_a_panel(ispmanager):
    client = ISPmanagerClient(ispmanager.url.replace("/ispmgr", "/manager/ispmgr"), "root", "secret", timeout=TIMEOUT)
    error = raises(NotAPanel, client.whoami)
    assert isinstance(error, PermanentError)
    assert "is not the panel's API address (HTTP 404)" in str(error.message)
    assert "/ispmgr" in error.message


def test_a_port_with_nothing_listening_is_a_transient_connection_error():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = ISPmanagerClient(f"http://127.0.0.1:{port}/ispmgr", "root", "secret", timeout=TIMEOUT)
    error = raises(Unreachable, client.whoami)
    assert isinstance(error, TransientError)
    assert f"127.0.0.1:{port}" in error.message


def test_tls_against_a_plain_http_port_fails_naming_the_host(ispmanager):
    # The emulator speaks plain HTTP, so the TLS handshake itself fails ("wrong version number").
    client = ISPmanagerClient(ispmanager.url.replace("http://", "https://"), "root", "secret", verify=True, timeout=TIMEOUT)
    error = raises(TLSFailed, client.whoami)
    assert "does not speak TLS as expected" in str(error.message)
    assert f"127.0.0.1:{ispmanager.port}" in error.message
    assert "secret" not in error.message


# C. Secrets


def test_emulator_calls_never_record_passwords(ispmanager, client, app):
    create(client, password="first-pass-1")
    client.user_set_password("alice", "second-pass-2")
    client.call("usrparam", su="alice", passwd="third-pass-3", confirm="third-pass-3", sok="ok")
    client.call("ftp.user.edit", sok="ok", owner="alice", name="web", passwd="ftp-pass-4", confirm="ftp-pass-4")
    login(ispmanager, "alice", "third-pass-3").whoami()
    recorded = repr(app.calls)
    assert [func for func, _ in app.calls][:4] == ["user.add.finish", "user.edit", "usrparam", "ftp.user.edit"]
    assert not {"passwd", "confirm", "authinfo"} & {key for _, params in app.calls for key in params}
    for secret in ("secret", "first-pass-1", "second-pass-2", "third-pass-3", "ftp-pass-4"):
        assert secret not in recorded


def test_client_debug_log_never_contains_the_password_or_authinfo(client, caplog):
    caplog.set_level(logging.DEBUG, logger="provisioning.coremanager.client")
    create(client, password="user-pass-1")
    client.user_set_password("alice", "user-pass-2")
    records = [record.getMessage() for record in caplog.records if record.name == "provisioning.coremanager.client"]
    assert [message.split()[1] for message in records] == ["user.add.finish", "user.edit"]
    assert "alice" in caplog.text
    for secret in ("secret", "user-pass-1", "user-pass-2", "authinfo", "passwd", "confirm"):
        assert secret not in caplog.text


def test_repr_of_the_client_hides_the_password(ispmanager):
    text = repr(login(ispmanager, "root", "hunter2-secret"))
    assert "root" in text
    assert "hunter2-secret" not in text
