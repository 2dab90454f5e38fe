"""The ISPmanager emulator spoken to raw, with `requests`: the wire of docs/ispmanager-api.md that the client does not use.

Reply shapes in every output format, GET as well as POST, sessions and one-time login keys,
FTP users, `usrparam`, template edits and the Lite edition.
"""

import time

import pytest

from provisioning.coremanager import emulator as core
from provisioning.coremanager.emulator import EmulatorServer
from provisioning.ispmanager.emulator import ISPmanagerEmulator
from tests.panel_protocol import caller, error_of, xml_doc

ADMIN = ("root", "secret")
raw, doc = caller(ADMIN)
ALICE = ("alice", "alice-pass-1")
KEY = "0123456789abcdef-sso"


@pytest.fixture
def app(ispmanager):
    """tests/conftest.py's Business (root / secret), with the seed's template."""
    ispmanager.app.add_preset("Site hosting", limit_db=25, limit_webdomains=25)
    return ispmanager.app


@pytest.fixture
def lite():
    with EmulatorServer(ISPmanagerEmulator(edition="lite", admins=dict([ADMIN]))) as server:
        yield server


def add_alice(server, **params) -> dict:
    return doc(server, "user.add.finish", sok="ok", name=ALICE[0], passwd=ALICE[1], confirm=ALICE[1], **params)


def session(server, **params) -> str:
    return doc(server, "auth", credentials=None, **params)["auth"]["$id"]


# Reply shapes


@pytest.mark.parametrize("out", ["json", "sjson"])
def test_json_created_reply_is_ok_and_the_new_id(ispmanager, out):
    response = raw(ispmanager, "user.add.finish", out=out, sok="ok", name="alice", passwd="pw-1", confirm="pw-1")
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {"doc": {"ok": {}, "id": {"$": "alice"}}}


def test_json_success_of_an_action_is_a_bare_ok(ispmanager):
    add_alice(ispmanager)
    assert raw(ispmanager, "user.suspend", elid="alice").json() == {"doc": {"ok": {}}}


def test_json_list_is_elem_of_text_fields(ispmanager):
    add_alice(ispmanager, limit_quota="1024")
    assert raw(ispmanager, "user").json() == {
        "doc": {
            "elem": [
                {
                    "name": {"$": "alice"},
                    "active": {"$": "on"},
                    "level": {"$": "16"},
                    "quota_total": {"$": "1024"},
                    "quota_used": {"$": "0"},
                    "owner": {"$": "root"},
                }
            ]
        }
    }


def test_json_error_is_typed_with_a_message_and_http_200(ispmanager):
    add_alice(ispmanager)
    response = raw(ispmanager, "user.add.finish", sok="ok", name="alice", passwd="pw-1", confirm="pw-1")
    assert response.status_code == 200
    assert response.json() == {
        "doc": {"error": {"$type": "exists", "$object": "user", "$lang": "en", "msg": {"$": "User 'alice' already exists"}}}
    }


def test_xml_success_is_doc_with_an_empty_ok(ispmanager):
    response = raw(ispmanager, "user.add.finish", out="xml", sok="ok", name="alice", passwd="pw-1", confirm="pw-1")
    assert response.headers["Content-Type"] == "text/xml"
    assert "<doc><ok/>" in response.text
    root = xml_doc(response)
    assert (root.tag, len(root.find("ok")), root.findtext("id")) == ("doc", 0, "alice")


def test_xml_error_carries_type_object_and_lang_as_attributes(ispmanager):
    add_alice(ispmanager)
    response = raw(ispmanager, "user.add.finish", out="xml", sok="ok", name="alice", passwd="pw-1", confirm="pw-1")
    assert '<doc><error type="exists" object="user" lang="en"><msg>User \'alice\' already exists</msg></error></doc>' in response.text
    error = xml_doc(response).find("error")
    assert error.attrib == {"type": "exists", "object": "user", "lang": "en"}


def test_xml_list_repeats_elem(ispmanager):
    add_alice(ispmanager)
    doc(ispmanager, "user.add.finish", sok="ok", name="bob", passwd="pw-1", confirm="pw-1")
    root = xml_doc(raw(ispmanager, "user", out="xml"))
    assert [(elem.findtext("name"), elem.findtext("active")) for elem in root.findall("elem")] == [("alice", "on"), ("bob", "on")]


def test_text_output_is_ok_or_error_type_and_object(ispmanager):
    assert raw(ispmanager, "user.add.finish", out="text", sok="ok", name="alice", passwd="pw-1", confirm="pw-1").text == "OK"
    assert (
        raw(ispmanager, "user.add.finish", out="text", sok="ok", name="alice", passwd="pw-1", confirm="pw-1").text == "ERROR exists(user)"
    )


def test_get_with_a_query_string_works_like_post(ispmanager):
    created = doc(ispmanager, "user.add.finish", method="get", sok="ok", name="alice", passwd="pw-1", confirm="pw-1")
    assert created == {"ok": {}, "id": {"$": "alice"}}
    assert doc(ispmanager, "user", method="get") == doc(ispmanager, "user")
    assert doc(ispmanager, "whoami", method="get") == {"user": {"$name": "root", "$level": "28"}}


def test_user_list_ignores_elid_and_sok(ispmanager):
    add_alice(ispmanager)
    doc(ispmanager, "user.add.finish", sok="ok", name="bob", passwd="pw-1", confirm="pw-1")
    assert [elem["name"]["$"] for elem in doc(ispmanager, "user", elid="bob", sok="ok")["elem"]] == ["alice", "bob"]


def test_user_edit_with_sok_and_no_elid_creates_a_user(ispmanager, app):
    assert doc(ispmanager, "user.edit", sok="ok", name="bob", passwd="pw-1", confirm="pw-1", preset="Site hosting")["id"] == {"$": "bob"}
    assert app.users["bob"]["limits"] == {"limit_db": "25", "limit_webdomains": "25"}


@pytest.mark.parametrize("func", ["user.edit", "user.delete"])
def test_a_missing_user_is_value_elid(ispmanager, func):
    assert error_of(doc(ispmanager, func, elid="nobody")) == ("value", "elid")


# Sessions


def test_auth_gives_a_session_id_and_level_that_later_calls_use(ispmanager):
    reply = doc(ispmanager, "auth", credentials=None, username="root", password="secret")
    assert reply["auth"]["$level"] == "28"
    assert doc(ispmanager, "whoami", credentials=None, auth=reply["auth"]["$id"]) == {"user": {"$name": "root", "$level": "28"}}


@pytest.mark.parametrize(
    "params",
    [{"username": "root", "password": "wrong"}, {"username": "nobody", "password": "secret"}],
)
def test_auth_with_wrong_credentials_is_badpassword(ispmanager, app, params):
    assert error_of(doc(ispmanager, "auth", credentials=None, **params)) == ("auth", "badpassword")
    assert app.sessions == {}


def test_an_unknown_session_is_an_auth_error(ispmanager):
    assert error_of(doc(ispmanager, "whoami", credentials=None, auth="0" * 24)) == ("auth", "badpassword")


def test_an_expired_session_is_an_auth_error(ispmanager, app, monkeypatch):
    auth = session(ispmanager, username="root", password="secret")
    monkeypatch.setattr(core, "SESSION_IDLE_SECONDS", 0)
    time.sleep(0.02)
    assert error_of(doc(ispmanager, "whoami", credentials=None, auth=auth)) == ("auth", "badpassword")
    assert auth not in app.sessions


def test_a_login_key_logs_in_as_the_user_once(ispmanager):
    add_alice(ispmanager)
    assert doc(ispmanager, "session.newkey", username="alice", key=KEY) == {"ok": {}}
    # What the browser is sent to (a GET) for the "open panel" button.
    login = {"method": "get", "credentials": None, "username": "alice", "key": KEY, "checkcookie": "no"}
    reply = doc(ispmanager, "auth", **login)
    assert reply["auth"]["$level"] == "16"
    assert doc(ispmanager, "whoami", credentials=None, auth=reply["auth"]["$id"])["user"]["$name"] == "alice"
    assert error_of(doc(ispmanager, "auth", **login)) == ("auth", "badpassword")  # single use


@pytest.mark.parametrize(
    ("params", "credentials", "error"),
    [
        ({"username": "alice", "key": "too-short"}, ADMIN, ("value", "key")),
        ({"username": "nobody", "key": KEY}, ADMIN, ("value", "username")),
        ({"username": "alice", "key": KEY}, ALICE, ("access", "func")),
    ],
)
def test_session_newkey_refuses(ispmanager, app, params, credentials, error):
    add_alice(ispmanager)
    assert error_of(doc(ispmanager, "session.newkey", credentials=credentials, **params)) == error
    assert app.login_keys == {}


def test_a_login_key_for_another_user_does_not_log_in(ispmanager):
    add_alice(ispmanager)
    doc(ispmanager, "session.newkey", username="alice", key=KEY)
    assert error_of(doc(ispmanager, "auth", credentials=None, username="root", key=KEY)) == ("auth", "badpassword")


# FTP users


def add_ftp(server, name="web", **params) -> dict:
    return doc(server, "ftp.user.edit", sok="ok", name=name, passwd="ftp-pw-1", confirm="ftp-pw-1", **params)


def ftp_names(server, **params) -> list[str]:
    return [elem["name"]["$"] for elem in doc(server, "ftp.user", **params).get("elem", [])]


def test_ftp_user_created_by_the_administrator_for_an_owner(ispmanager, app):
    add_alice(ispmanager)
    assert add_ftp(ispmanager, owner="alice", home="/www") == {"ok": {}, "id": {"$": "web"}}
    assert app.ftp_users["web"] | {"password": "..."} == {
        "name": "web",
        "owner": "alice",
        "home": "/www",
        "active": True,
        "password": "...",
    }
    assert ftp_names(ispmanager, su="alice") == ["web"]


def test_ftp_user_created_as_the_user_with_su_belongs_to_that_user(ispmanager, app):
    add_alice(ispmanager)
    doc(ispmanager, "user.add.finish", sok="ok", name="bob", passwd="pw-1", confirm="pw-1")
    add_ftp(ispmanager, su="alice", owner="bob")  # acting as alice, the owner is alice whatever is asked
    assert app.ftp_users["web"]["owner"] == "alice"
    assert ftp_names(ispmanager, su="bob") == []


def test_ftp_user_of_a_missing_owner_is_value_owner(ispmanager):
    assert error_of(add_ftp(ispmanager, owner="nobody")) == ("value", "owner")


def test_limit_ftp_users_is_enforced(ispmanager, app):
    add_alice(ispmanager, limit_ftp_users="1")
    add_ftp(ispmanager, "web", owner="alice")
    assert error_of(add_ftp(ispmanager, "backup", owner="alice")) == ("limit", "ftp.user")
    assert list(app.ftp_users) == ["web"]


def test_ftp_user_suspend_resume_delete(ispmanager, app):
    add_alice(ispmanager)
    add_ftp(ispmanager, "web", owner="alice")
    add_ftp(ispmanager, "backup", owner="alice")
    ftp = app.ftp_users
    doc(ispmanager, "ftp.user.suspend", su="alice", elid="web, backup")
    assert [user["active"] for user in ftp.values()] == [False, False]
    assert {elem["active"]["$"] for elem in doc(ispmanager, "ftp.user", su="alice")["elem"]} == {"off"}
    doc(ispmanager, "ftp.user.resume", su="alice", elid="web")
    assert (ftp["web"]["active"], ftp["backup"]["active"]) == (True, False)
    assert doc(ispmanager, "ftp.user.delete", su="alice", elid="web") == {"ok": {}}
    assert list(ftp) == ["backup"]
    assert error_of(doc(ispmanager, "ftp.user.delete", su="alice", elid="web")) == ("value", "elid")


def test_deleting_a_panel_user_removes_its_ftp_users(ispmanager, app):
    add_alice(ispmanager)
    doc(ispmanager, "user.add.finish", sok="ok", name="bob", passwd="pw-1", confirm="pw-1")
    add_ftp(ispmanager, "web", owner="alice")
    add_ftp(ispmanager, "bobs", owner="bob")
    doc(ispmanager, "user.delete", elid="alice")
    assert list(app.ftp_users) == ["bobs"]


# Passwords and templates


def test_usrparam_with_su_changes_the_users_password(ispmanager):
    add_alice(ispmanager)
    assert doc(ispmanager, "usrparam", su="alice", passwd="new-pw-2", confirm="new-pw-2", sok="ok") == {"ok": {}}
    assert doc(ispmanager, "whoami", credentials=("alice", "new-pw-2")) == {"user": {"$name": "alice", "$level": "16"}}
    assert error_of(doc(ispmanager, "whoami", credentials=ALICE)) == ("auth", "badpassword")


def test_usrparam_with_mismatched_confirm_keeps_the_password(ispmanager, app):
    add_alice(ispmanager)
    assert error_of(doc(ispmanager, "usrparam", su="alice", passwd="new-pw-2", confirm="other", sok="ok")) == ("value", "confirm")
    assert app.users["alice"]["password"] == ALICE[1]


def test_preset_edit_with_elid_and_sok_edits_the_template(ispmanager, app):
    assert doc(ispmanager, "preset.edit", elid="Site hosting", sok="ok", limit_db="5", limit_ssl="on") == {
        "ok": {},
        "id": {"$": "Site hosting"},
    }
    assert doc(ispmanager, "preset.edit", elid="Site hosting") == {
        "name": {"$": "Site hosting"},
        "limit_db": {"$": "5"},
        "limit_webdomains": {"$": "25"},
        "limit_ssl": {"$": "on"},
    }


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"elid": "Nope", "sok": "ok", "limit_db": "5"}, ("value", "elid")),
        ({"elid": "Site hosting", "sok": "ok", "limit_db": "many"}, ("value", "limit_db")),
        ({"sok": "ok", "name": "Site hosting"}, ("exists", "preset")),
    ],
)
def test_preset_edit_refuses(ispmanager, app, params, error):
    assert error_of(doc(ispmanager, "preset.edit", **params)) == error
    assert app.presets == {"Site hosting": {"limit_db": "25", "limit_webdomains": "25"}}


# Lite


def test_lite_users_have_no_owner(lite):
    add_alice(lite)
    [elem] = doc(lite, "user")["elem"]
    assert elem["name"] == {"$": "alice"}
    assert "owner" not in elem
    assert "owner" not in doc(lite, "user.edit", elid="alice")


def test_lite_has_no_resellers():
    with pytest.raises(ValueError, match="no resellers"):
        ISPmanagerEmulator(edition="lite", resellers={"res": "res-pass-1"})
