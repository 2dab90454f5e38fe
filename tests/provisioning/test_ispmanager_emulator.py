"""The ISPmanager emulator spoken to raw, with `requests`: the wire of docs/ispmanager-api.md that the client does not use.

Reply shapes in every output format, GET as well as POST, sessions and one-time login keys (the API's
and a browser's), FTP users, `usrparam`, template edits, addresses, the Lite edition, levels, and each
switch that picks one of the document's unconfirmed alternatives.
"""

import time

import pytest
import requests

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
    assert doc(ispmanager, "whoami", method="get") == {"user": {"$name": "root", "$level": "29"}}


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
    assert reply["auth"]["$level"] == "29"
    assert doc(ispmanager, "whoami", credentials=None, auth=reply["auth"]["$id"]) == {"user": {"$name": "root", "$level": "29"}}


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


# Levels: administrator 29, root 30


@pytest.fixture
def with_root():
    with EmulatorServer(ISPmanagerEmulator(admins=dict([ADMIN]), roots={"boss": "boss-pass-1"})) as server:
        server.app.add_preset("Site hosting")
        yield server


@pytest.mark.parametrize(("credentials", "level"), [(ADMIN, "29"), (("boss", "boss-pass-1"), "30")], ids=["administrator", "root"])
def test_auth_and_whoami_give_the_level_of_an_administrator_and_a_root(with_root, credentials, level):
    name, password = credentials
    assert doc(with_root, "auth", credentials=None, username=name, password=password)["auth"]["$level"] == level
    assert doc(with_root, "whoami", credentials=credentials) == {"user": {"$name": name, "$level": level}}


def test_a_root_may_do_what_an_administrator_may(with_root):
    boss = ("boss", "boss-pass-1")
    assert doc(with_root, "preset.edit", credentials=boss, sok="ok", name="Big", limit_db="50") == {"ok": {}, "id": {"$": "Big"}}
    assert doc(with_root, "user.add.finish", credentials=boss, sok="ok", name="alice", passwd="pw-1", confirm="pw-1")["id"] == {
        "$": "alice"
    }
    assert doc(with_root, "session.newkey", credentials=boss, username="alice", key=KEY) == {"ok": {}}


def test_root_alone_replaces_the_default_administrator():
    with EmulatorServer(ISPmanagerEmulator(roots={"boss": "boss-pass-1"})) as server:
        assert server.app.accounts == {"boss": ("boss-pass-1", 30)}


# whoami_level: the level in whoami is unconfirmed; func=auth always gives it


def test_without_whoami_level_whoami_gives_the_name_only_and_auth_still_the_level(ispmanager, app):
    app.whoami_level = False
    assert doc(ispmanager, "whoami") == {"user": {"$name": "root"}}
    assert "level" not in raw(ispmanager, "whoami", out="xml").text
    assert doc(ispmanager, "auth", credentials=None, username="root", password="secret")["auth"]["$level"] == "29"


def test_whoami_level_is_a_constructor_switch():
    with EmulatorServer(ISPmanagerEmulator(admins=dict([ADMIN]), whoami_level=False)) as server:
        assert doc(server, "whoami") == {"user": {"$name": "root"}}


# form_active: `active` and `fullname` in the user.edit form are unconfirmed; the list always has `active`


def test_the_form_has_active_and_fullname_by_default(ispmanager, app):
    add_alice(ispmanager, fullname="Alice Example")
    form = doc(ispmanager, "user.edit", elid="alice")
    assert (form["active"], form["fullname"]) == ({"$": "on"}, {"$": "Alice Example"})


def test_without_form_active_the_form_has_neither_active_nor_fullname_and_the_list_keeps_active(ispmanager, app):
    add_alice(ispmanager, fullname="Alice Example", limit_db="3")
    doc(ispmanager, "user.suspend", elid="alice")
    app.form_active = False

    form = doc(ispmanager, "user.edit", elid="alice")

    assert {key: value["$"] for key, value in form.items()} == {"name": "alice", "preset": "", "owner": "root", "limit_db": "3"}
    [row] = doc(ispmanager, "user")["elem"]
    assert set(row) == {"name", "active", "owner", "level", "quota_total", "quota_used"}  # never fullname
    assert row["active"] == {"$": "off"}


def test_form_active_is_a_constructor_switch():
    with EmulatorServer(ISPmanagerEmulator(admins=dict([ADMIN]), form_active=False)) as server:
        add_alice(server)
        assert {"active", "fullname"}.isdisjoint(doc(server, "user.edit", elid="alice"))


# Paging: p_num asks for a page; the reply carries p_cnt, p_elems and p_num


def names(reply: dict) -> list[str]:
    return [elem["name"]["$"] for elem in reply.get("elem", [])]


def paging(reply: dict) -> tuple[str, str, str]:
    return reply["p_cnt"]["$"], reply["p_elems"]["$"], reply["p_num"]["$"]


def add_users(server, *logins):
    for login in logins:
        doc(server, "user.add.finish", sok="ok", name=login, passwd="pw-1", confirm="pw-1")


def test_without_a_page_size_a_list_is_whole_and_has_no_paging_fields(ispmanager, app):
    add_users(ispmanager, "alice", "bob", "carol")
    reply = doc(ispmanager, "user", p_num="2")
    assert names(reply) == ["alice", "bob", "carol"]
    assert {"p_cnt", "p_elems", "p_num"}.isdisjoint(reply)


def test_a_paged_list_gives_the_page_asked_for_and_announces_every_row(ispmanager, app):
    add_users(ispmanager, "alice", "bob", "carol")
    app.page_size = 2

    first, second, third = (doc(ispmanager, "user", p_num=str(number)) for number in (1, 2, 3))

    assert (names(first), paging(first)) == (["alice", "bob"], ("2", "3", "1"))
    assert (names(second), paging(second)) == (["carol"], ("2", "3", "2"))
    assert (names(third), paging(third)) == ([], ("2", "3", "3"))
    assert doc(ispmanager, "user") == first  # p_num defaults to the first page


def test_paging_fields_are_top_level_elements_in_xml(ispmanager, app):
    add_users(ispmanager, "alice", "bob", "carol")
    app.page_size = 2
    root = xml_doc(raw(ispmanager, "user", out="xml", p_num="2"))
    assert [elem.findtext("name") for elem in root.findall("elem")] == ["carol"]
    assert (root.findtext("p_cnt"), root.findtext("p_elems"), root.findtext("p_num")) == ("2", "3", "2")


@pytest.mark.parametrize(("func", "rows"), [("user", 2), ("preset", 2), ("ftp.user", 2), ("ipaddr", 2), ("actionlist", 22)])
def test_every_list_is_paged(ispmanager, app, func, rows):
    add_users(ispmanager, "alice", "bob")
    app.add_preset("Big")
    add_ftp(ispmanager, "web", owner="alice")
    add_ftp(ispmanager, "backup", owner="bob")
    doc(ispmanager, "ipaddr.edit", sok="ok", name="203.0.113.5", iprole="assigned", owner="alice")
    doc(ispmanager, "ipaddr.edit", sok="ok", name="203.0.113.6", iprole="assigned", owner="bob")
    app.page_size = 1

    reply = doc(ispmanager, func, p_num="2")

    assert len(reply["elem"]) == 1
    assert paging(reply) == ("1", str(rows), "2")


@pytest.mark.parametrize("number", ["0", "-1", "two", "9" * 5000])
def test_a_bad_page_number_is_value_p_num(ispmanager, app, number):
    app.page_size = 2
    assert error_of(doc(ispmanager, "user", p_num=number)) == ("value", "p_num")


def test_short_pages_drop_a_row_of_each_page_but_announce_every_row(ispmanager, app):
    add_users(ispmanager, "alice", "bob", "carol")
    app.page_size, app.short_pages = 2, True

    first, second = doc(ispmanager, "user", p_num="1"), doc(ispmanager, "user", p_num="2")

    assert (names(first), paging(first)) == (["alice"], ("2", "3", "1"))
    assert (names(second), paging(second)) == ([], ("2", "3", "2"))


def test_paging_switches_are_constructor_switches():
    with EmulatorServer(ISPmanagerEmulator(admins=dict([ADMIN]), page_size=1, short_pages=True)) as server:
        add_users(server, "alice", "bob")
        reply = doc(server, "user")
        assert (names(reply), paging(reply)) == ([], ("1", "2", "1"))


# actionlist and missing functions

ISPMANAGER_FUNCTIONS = {
    "auth",
    "actionlist",
    "license.info",
    "whoami",
    "user",
    "user.edit",
    "user.add.finish",
    "user.suspend",
    "user.resume",
    "user.delete",
    "usrparam",
    "preset",
    "preset.edit",
    "ftp.user",
    "ftp.user.edit",
    "ftp.user.suspend",
    "ftp.user.resume",
    "ftp.user.delete",
    "session.newkey",
    "ipaddr",
    "ipaddr.edit",
    "ipaddr.delete",
}


def test_actionlist_names_every_function_of_the_panel(ispmanager):
    reply = doc(ispmanager, "actionlist")
    assert set(names(reply)) == ISPMANAGER_FUNCTIONS
    assert len(names(reply)) == len(ISPMANAGER_FUNCTIONS)
    assert {"p_cnt", "p_elems", "p_num"}.isdisjoint(reply)


def test_actionlist_answers_a_panel_user_too(ispmanager):
    add_alice(ispmanager)
    assert set(names(doc(ispmanager, "actionlist", credentials=ALICE))) == ISPMANAGER_FUNCTIONS


@pytest.mark.parametrize("missing", ["whoami", "session.newkey", "ipaddr.delete", "user.add.finish"])
def test_a_missing_function_is_missed_func_and_left_out_of_actionlist(ispmanager, app, missing):
    app.missing_functions = {missing}
    assert error_of(doc(ispmanager, missing)) == ("missed", "func")
    assert set(names(doc(ispmanager, "actionlist"))) == ISPMANAGER_FUNCTIONS - {missing}
    assert error_of(doc(ispmanager, "user.edit", elid="nobody")) == ("value", "elid")  # the others still answer


def test_a_panel_without_actionlist(ispmanager, app):
    app.missing_functions = {"actionlist"}
    assert error_of(doc(ispmanager, "actionlist")) == ("missed", "func")
    assert doc(ispmanager, "whoami")["user"]["$name"] == "root"


def test_a_panel_without_auth_has_no_sessions_but_authinfo_works(ispmanager, app):
    app.missing_functions = {"auth"}
    assert error_of(doc(ispmanager, "auth", credentials=None, username="root", password="secret")) == ("missed", "func")
    assert app.sessions == {}
    assert "auth" not in names(doc(ispmanager, "actionlist"))


def test_missing_functions_is_a_constructor_switch():
    with EmulatorServer(ISPmanagerEmulator(admins=dict([ADMIN]), missing_functions=["whoami", "actionlist"])) as server:
        assert error_of(doc(server, "whoami")) == ("missed", "func")
        assert error_of(doc(server, "actionlist")) == ("missed", "func")
        assert doc(server, "license.info")["mgr"] == {"$": "ispmgr"}


def test_a_renamed_function_answers_under_its_new_name_only(ispmanager, app):
    app.rename = {"user.add.finish": "user.create"}
    assert doc(ispmanager, "user.create", sok="ok", name="alice", passwd="pw-1", confirm="pw-1") == {"ok": {}, "id": {"$": "alice"}}
    assert error_of(doc(ispmanager, "user.add.finish", sok="ok", name="bob", passwd="pw-1", confirm="pw-1")) == ("missed", "func")
    assert set(names(doc(ispmanager, "actionlist"))) == ISPMANAGER_FUNCTIONS - {"user.add.finish"} | {"user.create"}


# license.info


@pytest.mark.parametrize(("edition", "text"), [("business", "ISPmanager Business"), ("lite", "ISPmanager Lite")])
def test_license_info_names_the_edition_by_default(edition, text):
    with EmulatorServer(ISPmanagerEmulator(edition=edition, admins=dict([ADMIN]))) as server:
        reply = doc(server, "license.info")
    assert (reply["mgr"], reply["panel_name"]) == ({"$": "ispmgr"}, {"$": text})


@pytest.mark.parametrize("text", ["ISPmanager Lite 5.290", "ispmanager business", "ISPmanager 5 Lite with recovery", "BILLmanager"])
def test_license_text_is_what_panel_name_says(ispmanager, app, text):
    app.license_text = text
    reply = doc(ispmanager, "license.info")
    assert (reply["mgr"], reply["panel_name"]) == ({"$": "ispmgr"}, {"$": text})


def test_license_text_is_a_constructor_switch():
    with EmulatorServer(ISPmanagerEmulator(admins=dict([ADMIN]), license_text="ISPmanager Lite 5.290")) as server:
        assert doc(server, "license.info")["panel_name"] == {"$": "ISPmanager Lite 5.290"}


# Addresses (Business): assigned by name, deleted by billing, never removed with their user


def assign(server, **params) -> dict:
    return doc(server, "ipaddr.edit", sok="ok", iprole="assigned", owner="alice", **params)


def test_ipaddr_edit_assigns_the_address_named(ispmanager, app):
    add_alice(ispmanager)
    assert assign(ispmanager, name="203.0.113.5") == {"ok": {}, "id": {"$": "203.0.113.5"}}
    assert doc(ispmanager, "ipaddr")["elem"] == [{"name": {"$": "203.0.113.5"}, "owner": {"$": "alice"}, "iprole": {"$": "assigned"}}]


@pytest.mark.parametrize("params", [{"name": ""}, {}], ids=["empty-name", "no-name"])
def test_ipaddr_edit_without_a_name_gives_the_owner_any_free_address(ispmanager, app, params):
    add_alice(ispmanager)
    assign(ispmanager, name="198.51.100.1")

    reply = assign(ispmanager, **params)

    assert reply == {"ok": {}, "id": {"$": "198.51.100.2"}}
    assert app.ip_addresses["198.51.100.2"] == {"owner": "alice", "iprole": "assigned"}


def test_deleting_a_user_leaves_its_addresses_for_billing_to_delete(ispmanager, app):
    add_alice(ispmanager)
    assign(ispmanager, name="203.0.113.5")

    doc(ispmanager, "user.delete", elid="alice")

    assert [elem["name"]["$"] for elem in doc(ispmanager, "ipaddr")["elem"]] == ["203.0.113.5"]
    assert doc(ispmanager, "ipaddr.delete", elid="203.0.113.5") == {"ok": {}}
    assert error_of(doc(ispmanager, "ipaddr.delete", elid="203.0.113.5")) == ("value", "elid")  # already gone
    assert doc(ispmanager, "ipaddr").get("elem", []) == []


# A browser's login with a one-time key (the "open panel" button), and the page it lands on


def browser_login(server, browser, login="alice", key=KEY) -> requests.Response:
    return browser.get(server.url, params={"func": "auth", "username": login, "key": key, "checkcookie": "no"}, timeout=5)


def test_a_browser_logs_in_with_a_key_once_and_stays_logged_in_by_its_cookie(ispmanager, app):
    add_alice(ispmanager)
    doc(ispmanager, "session.newkey", username="alice", key=KEY)
    browser = requests.Session()

    page = browser_login(ispmanager, browser)

    assert (page.status_code, page.headers["Content-Type"]) == (200, "text/html")
    assert "Logged in as alice" in page.text
    [session] = app.sessions
    assert browser.cookies.get("ispmgrses5") == session
    assert "HttpOnly" in page.headers["Set-Cookie"]
    assert "Logged in as alice" in browser.get(ispmanager.url, timeout=5).text
    assert "Logged in" not in requests.get(ispmanager.url, timeout=5).text  # another browser, without the cookie

    again = browser_login(ispmanager, requests.Session())
    assert (again.status_code, again.headers["Content-Type"]) == (200, "text/html")
    assert "Login failed" in again.text
    assert "Set-Cookie" not in again.headers
    assert len(app.sessions) == 1


@pytest.mark.parametrize(("login", "key"), [("alice", "wrong-key-0123456789"), ("root", KEY)], ids=["wrong-key", "other-user"])
def test_a_browser_with_a_wrong_key_gets_the_login_failed_page(ispmanager, app, login, key):
    add_alice(ispmanager)
    doc(ispmanager, "session.newkey", username="alice", key=KEY)

    page = browser_login(ispmanager, requests.Session(), login, key)

    assert (page.status_code, "Login failed" in page.text, "Set-Cookie" in page.headers) == (200, True, False)
    assert app.sessions == {}
    assert "Logged in as alice" in browser_login(ispmanager, requests.Session()).text  # the key was not used up


def test_a_browser_logs_in_with_a_password_too(ispmanager):
    page = requests.post(ispmanager.url, data={"func": "auth", "username": "root", "password": "secret"}, timeout=5)
    assert (page.status_code, page.headers["Content-Type"]) == (200, "text/html")
    assert "Logged in as root" in page.text
