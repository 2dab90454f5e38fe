"""The IPmanager emulator spoken to raw, with `requests`: the wire of docs/ipmanager-api.md.

Reply shapes in `out=json`, `xml` and `text`, GET as well as POST, sessions, editing the PTR and
note of an address, and the functions' refusals — what the client relies on without checking; the
function list, levels, and each switch that picks one of the document's unconfirmed alternatives.
"""

import ipaddress

import pytest
import requests

from ipam_sync.ipmanager.emulator import IPmanagerEmulator
from provisioning.coremanager.emulator import EmulatorServer
from tests.panel_protocol import caller, error_of, xml_doc

USER = ("billing", "secret")
ADMIN = ("admin", "secret")
raw, doc = caller(USER)
IP = "133.31.223.20"


@pytest.fixture
def app(ipmanager):
    """tests/conftest.py's IPmanager, with IP allocated by billing and 133.31.223.200 by another user."""
    ipmanager.app.take(IP, owner="billing", domain="shop.example.com", note="billing:1")
    ipmanager.app.take("133.31.223.200", owner="other", iptype="public", domain="other.example.com")
    return ipmanager.app


def as_int(ip: str) -> int:
    return int(ipaddress.ip_address(ip))


def allocate(server, **params) -> dict:
    return doc(server, "ip.edit", sok="ok", family="ipv4", iptype="alias", domain="new.example.com", note="billing:2", **params)


# out=json


def test_json_allocation_is_ok_and_the_address_as_id(ipmanager, app):
    response = raw(ipmanager, "ip.edit", sok="ok", family="ipv4", iptype="alias", domain="new.example.com", note="n")
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {"doc": {"ok": {}, "id": {"$": "133.31.223.1"}}}  # .0 is the network address


@pytest.mark.parametrize(
    ("credentials", "owner"),
    [(USER, None), (ADMIN, "billing")],
    ids=["user-without-owner", "admin-with-owner"],
)
def test_json_list_is_elem_of_text_fields(ipmanager, app, credentials, owner):
    elems = doc(ipmanager, "ip", credentials=credentials)["elem"]
    row = {"ip": {"$": IP}, "iptype": {"$": "alias"}, "domain": {"$": "shop.example.com"}, "note": {"$": "billing:1"}}
    assert elems[0] == row | ({"owner": {"$": owner}} if owner else {})
    assert len(elems) == (2 if owner else 1)


def test_json_list_of_a_user_with_nothing_is_empty(ipmanager):
    assert doc(ipmanager, "ip").get("elem", []) == []


@pytest.mark.parametrize(("credentials", "has_owner"), [(USER, False), (ADMIN, True)], ids=["user", "admin"])
def test_ip_edit_with_elid_and_no_sok_reads_one_address(ipmanager, app, credentials, has_owner):
    reply = doc(ipmanager, "ip.edit", credentials=credentials, elid=IP)
    assert {key: value["$"] for key, value in reply.items()} == {
        "ip": IP,
        "iptype": "alias",
        "domain": "shop.example.com",
        "note": "billing:1",
    } | ({"owner": "billing"} if has_owner else {})


def test_ip_edit_with_elid_and_sok_changes_ptr_and_note_only(ipmanager, app):
    assert doc(ipmanager, "ip.edit", elid=IP, sok="ok", domain="www.example.com", note="billing:9", iptype="public") == {
        "ok": {},
        "id": {"$": IP},
    }
    assert app.allocated[as_int(IP)] == {
        "ip": IP,
        "iptype": "alias",
        "domain": "www.example.com",
        "note": "billing:9",
        "owner": "billing",
    }


def test_json_error_is_typed_with_a_message_and_http_200(ipmanager, app):
    response = raw(ipmanager, "ip.edit", sok="ok", family="ipv4", iptype="alias", ip=IP)
    assert response.status_code == 200
    assert response.json() == {
        "doc": {"error": {"$type": "exists", "$object": "ip", "$lang": "en", "msg": {"$": f"{IP} is already allocated"}}}
    }


@pytest.mark.parametrize(("credentials", "groups"), [(USER, ["alias"]), (ADMIN, ["alias", "public"])], ids=["user", "admin"])
def test_iptype_lists_the_groups_the_caller_may_use(ipmanager, credentials, groups):
    assert doc(ipmanager, "iptype", credentials=credentials) == {"elem": [{"name": {"$": name}} for name in groups]}


def test_there_is_no_function_listing_pools(ipmanager):
    assert error_of(doc(ipmanager, "ippool")) == ("missed", "func")


# out=xml and out=text


def test_xml_allocation_is_doc_with_an_empty_ok_and_the_id(ipmanager):
    response = raw(ipmanager, "ip.edit", out="xml", sok="ok", family="ipv4", iptype="alias", ip="133.31.223.7")
    assert response.headers["Content-Type"] == "text/xml"
    assert "<doc><ok/><id>133.31.223.7</id></doc>" in response.text
    root = xml_doc(response)
    assert (root.tag, len(root.find("ok")), root.findtext("id")) == ("doc", 0, "133.31.223.7")


def test_xml_list_repeats_elem_with_the_owner_for_the_administrator(ipmanager, app):
    root = xml_doc(raw(ipmanager, "ip", out="xml", credentials=ADMIN))
    assert [(elem.findtext("ip"), elem.findtext("iptype"), elem.findtext("owner")) for elem in root.findall("elem")] == [
        (IP, "alias", "billing"),
        ("133.31.223.200", "public", "other"),
    ]


def test_xml_error_carries_type_object_and_lang_as_attributes(ipmanager):
    response = raw(ipmanager, "ip.edit", out="xml", sok="ok", family="ipv4", iptype="alias", ip="133.31.223.200")
    assert '<doc><error type="access" object="ip" lang="en"><msg>133.31.223.200 is outside your pool</msg></error></doc>' in response.text
    assert xml_doc(response).find("error").attrib == {"type": "access", "object": "ip", "lang": "en"}


def test_text_output_is_ok_or_error_type_and_object(ipmanager):
    assert raw(ipmanager, "ip.edit", out="text", sok="ok", family="ipv4", iptype="alias", ip="133.31.223.7").text == "OK"
    assert raw(ipmanager, "ip.edit", out="text", sok="ok", family="ipv4", iptype="alias", ip="133.31.223.7").text == "ERROR exists(ip)"


# GET and sessions


def test_get_with_a_query_string_works_like_post(ipmanager, app):
    assert allocate(ipmanager, method="get", ip="133.31.223.8") == {"ok": {}, "id": {"$": "133.31.223.8"}}
    assert app.allocated[as_int("133.31.223.8")]["domain"] == "new.example.com"
    assert doc(ipmanager, "ip", method="get") == doc(ipmanager, "ip")
    assert doc(ipmanager, "whoami", method="get", credentials=ADMIN) == {"user": {"$name": "admin", "$level": "29"}}
    assert doc(ipmanager, "ip.delete", method="get", elid="133.31.223.8") == {"ok": {}}


@pytest.mark.parametrize(("credentials", "level"), [(USER, "16"), (ADMIN, "29")], ids=["user", "admin"])
def test_auth_gives_a_session_that_later_calls_use(ipmanager, app, credentials, level):
    reply = doc(ipmanager, "auth", credentials=None, username=credentials[0], password=credentials[1])
    session = reply["auth"]["$id"]
    assert reply["auth"]["$level"] == level
    assert doc(ipmanager, "whoami", credentials=None, auth=session) == {"user": {"$name": credentials[0], "$level": level}}
    assert doc(ipmanager, "ip", credentials=None, auth=session)["elem"][0]["ip"] == {"$": IP}
    assert [func for func, _ in app.calls] == ["whoami", "ip"]  # func=auth itself is not recorded
    assert not {"auth", "authinfo", "password", "username"} & {key for _, params in app.calls for key in params}
    assert session not in repr(app.calls)


@pytest.mark.parametrize(
    "params",
    [{"username": "billing", "password": "wrong"}, {"username": "nobody", "password": "secret"}, {"username": "billing"}],
)
def test_auth_with_wrong_credentials_is_badpassword(ipmanager, app, params):
    assert error_of(doc(ipmanager, "auth", credentials=None, **params)) == ("auth", "badpassword")
    assert app.sessions == {}


@pytest.mark.parametrize("params", [{"auth": "0" * 24}, {}], ids=["unknown-session", "no-credentials"])
def test_a_call_without_valid_credentials_is_an_auth_error(ipmanager, app, params):
    assert error_of(doc(ipmanager, "ip", credentials=None, **params)) == ("auth", "badpassword")
    assert app.calls == []


# Refusals


@pytest.mark.parametrize(
    ("func", "params", "error"),
    [
        ("ip.edit", {}, ("value", "elid")),  # neither an address nor sok=ok
        ("ip.edit", {"elid": "133.31.223.200"}, ("value", "elid")),  # another user's address is not seen
        ("ip.edit", {"elid": "133.31.223.200", "sok": "ok", "note": "mine"}, ("value", "elid")),
        ("ip.edit", {"elid": "not-an-address"}, ("value", "elid")),
        ("ip.delete", {}, ("value", "elid")),
        ("ip.delete", {"elid": "133.31.223.200"}, ("missed", "ip")),
        ("ip.nonsense", {}, ("missed", "func")),
    ],
    ids=["edit-nothing", "read-others", "edit-others", "read-not-ip", "delete-nothing", "delete-others", "unknown-func"],
)
def test_refusals_leave_the_addresses_alone(ipmanager, app, func, params, error):
    before = {key: dict(value) for key, value in app.allocated.items()}
    assert error_of(doc(ipmanager, func, **params)) == error
    assert app.allocated == before


def test_the_administrator_marks_an_address_allocated_for_a_user(ipmanager, app):
    assert allocate(ipmanager, credentials=ADMIN, ip="133.31.223.250", owner="billing")["id"] == {"$": "133.31.223.250"}
    assert "133.31.223.250" in app.owned_by("billing")  # outside billing's pool: the administrator may
    assert doc(ipmanager, "ip.delete", elid="133.31.223.250") == {"ok": {}}  # and the user then releases it


def test_a_wrong_path_is_an_html_404(ipmanager):
    response = requests.post(ipmanager.url.replace("/ipmgr", "/ispmgr"), data={"func": "whoami", "out": "json"}, timeout=5)
    assert (response.status_code, response.headers["Content-Type"]) == (404, "text/html")


# A network's first and last addresses (network and broadcast) are never handed out.


def test_the_whole_network_hands_out_every_address_but_the_network_and_broadcast(ipmanager):
    taken = []
    while "id" in (reply := allocate(ipmanager, credentials=ADMIN)):
        taken.append(reply["id"]["$"])

    assert taken == [f"133.31.223.{n}" for n in range(1, 255)]
    assert error_of(reply) == ("limit", "ip")


@pytest.mark.parametrize("address", ["133.31.223.0", "133.31.223.255"])
def test_asking_for_the_network_or_broadcast_address_is_refused(ipmanager, address):
    reply = allocate(ipmanager, credentials=ADMIN, ip=address, owner="billing")

    assert error_of(reply) == ("value", "ip")
    assert reply["error"]["msg"]["$"] == f"{address} is the network or broadcast address of its network"
    assert ipmanager.app.allocated == {}


def test_a_31_network_has_no_network_or_broadcast_address_to_keep(ipmanager):
    ipmanager.app.add_network("10.9.0.0/31")

    taken = [allocate(ipmanager, credentials=ADMIN, ip=ip)["id"]["$"] for ip in ("10.9.0.0", "10.9.0.1")]

    assert taken == ["10.9.0.0", "10.9.0.1"]


# The PTR name is stored as given: the document writes it as an FQDN with a trailing dot.


def test_a_trailing_dot_of_the_ptr_name_is_kept_on_allocation_and_edit(ipmanager, app):
    doc(ipmanager, "ip.edit", sok="ok", family="ipv4", iptype="alias", ip="133.31.223.8", domain="new.example.com.")
    doc(ipmanager, "ip.edit", elid=IP, sok="ok", domain="www.example.com.")
    listed = {elem["ip"]["$"]: elem["domain"]["$"] for elem in doc(ipmanager, "ip")["elem"]}
    assert listed == {IP: "www.example.com.", "133.31.223.8": "new.example.com."}


# Levels: administrator 29, root 30


def test_a_root_is_level_30_and_sees_every_address_with_its_owner():
    with EmulatorServer(IPmanagerEmulator(roots={"boss": "boss-pass-1"})) as server:
        server.app.take(IP, owner="billing")
        server.app.take("133.31.223.200", owner="other")
        boss = ("boss", "boss-pass-1")
        assert doc(server, "auth", credentials=None, username="boss", password="boss-pass-1")["auth"]["$level"] == "30"
        assert doc(server, "whoami", credentials=boss) == {"user": {"$name": "boss", "$level": "30"}}
        assert [(elem["ip"]["$"], elem["owner"]["$"]) for elem in doc(server, "ip", credentials=boss)["elem"]] == [
            (IP, "billing"),
            ("133.31.223.200", "other"),
        ]
        assert server.app.accounts == {"boss": ("boss-pass-1", 30)}  # no default administrator beside it


# whoami_level


@pytest.mark.parametrize(("credentials", "level"), [(USER, "16"), (ADMIN, "29")], ids=["user", "admin"])
def test_without_whoami_level_whoami_gives_the_name_only_and_auth_still_the_level(ipmanager, credentials, level):
    ipmanager.app.whoami_level = False
    assert doc(ipmanager, "whoami", credentials=credentials) == {"user": {"$name": credentials[0]}}
    assert doc(ipmanager, "auth", credentials=None, username=credentials[0], password=credentials[1])["auth"]["$level"] == level


def test_whoami_level_is_a_constructor_switch():
    with EmulatorServer(IPmanagerEmulator(whoami_level=False)) as server:
        assert doc(server, "whoami", credentials=ADMIN) == {"user": {"$name": "admin"}}


# allocate_reply_id: the allocation's `doc.id` is assumed


def test_without_the_allocation_id_the_address_is_allocated_and_the_reply_is_a_bare_ok(ipmanager, app):
    app.allocate_reply_id = False

    assert allocate(ipmanager) == {"ok": {}}

    assert app.allocated[as_int("133.31.223.1")] == {
        "ip": "133.31.223.1",
        "iptype": "alias",
        "domain": "new.example.com",
        "note": "billing:2",
        "owner": "billing",
    }
    assert "<doc><ok/></doc>" in raw(ipmanager, "ip.edit", out="xml", sok="ok", family="ipv4", iptype="alias").text
    assert doc(ipmanager, "ip.edit", elid=IP, sok="ok", note="billing:9") == {"ok": {}, "id": {"$": IP}}  # an edit still names it


def test_allocate_reply_id_is_a_constructor_switch():
    with EmulatorServer(IPmanagerEmulator(allocate_reply_id=False)) as server:
        server.app.add_network("10.9.0.0/24")
        assert allocate(server, credentials=ADMIN) == {"ok": {}}
        assert server.app.owned_by("admin") == ["10.9.0.1"]


# actionlist, missing and renamed functions

IPMANAGER_FUNCTIONS = {"auth", "actionlist", "whoami", "ip", "ip.edit", "ip.delete", "iptype"}


def names(reply: dict) -> list[str]:
    return [elem["name"]["$"] for elem in reply.get("elem", [])]


@pytest.mark.parametrize("credentials", [USER, ADMIN], ids=["user", "admin"])
def test_actionlist_names_the_documents_functions(ipmanager, credentials):
    listed = names(doc(ipmanager, "actionlist", credentials=credentials))
    assert (set(listed), len(listed)) == (IPMANAGER_FUNCTIONS, len(IPMANAGER_FUNCTIONS))


@pytest.mark.parametrize("missing", ["ip.delete", "iptype", "whoami", "actionlist"])
def test_a_missing_function_is_missed_func_and_left_out_of_actionlist(ipmanager, app, missing):
    app.missing_functions = {missing}
    assert error_of(doc(ipmanager, missing, elid=IP)) == ("missed", "func")
    assert app.allocated[as_int(IP)]["owner"] == "billing"
    if missing != "actionlist":
        assert set(names(doc(ipmanager, "actionlist"))) == IPMANAGER_FUNCTIONS - {missing}
    assert doc(ipmanager, "ip")["elem"][0]["ip"] == {"$": IP}


def test_a_renamed_function_answers_under_its_new_name_only(ipmanager, app):
    app.rename = {"ip.delete": "ip.free"}

    assert error_of(doc(ipmanager, "ip.delete", elid=IP)) == ("missed", "func")
    assert as_int(IP) in app.allocated
    assert doc(ipmanager, "ip.free", elid=IP) == {"ok": {}}
    assert as_int(IP) not in app.allocated
    assert set(names(doc(ipmanager, "actionlist"))) == IPMANAGER_FUNCTIONS - {"ip.delete"} | {"ip.free"}
    assert [func for func, _ in app.calls][-2:] == ["ip.free", "actionlist"]  # recorded by the name on the wire


def test_rename_and_missing_functions_are_constructor_switches():
    app = IPmanagerEmulator(rename={"ip.delete": "ip.free", "iptype": "ipgroup"}, missing_functions={"whoami"})
    with EmulatorServer(app) as server:
        assert set(names(doc(server, "actionlist", credentials=ADMIN))) == {"auth", "actionlist", "ip", "ip.edit", "ip.free", "ipgroup"}
        assert doc(server, "ipgroup", credentials=ADMIN) == {"elem": [{"name": {"$": "alias"}}, {"name": {"$": "public"}}]}
        assert error_of(doc(server, "whoami", credentials=ADMIN)) == ("missed", "func")


# Paging


def paging(reply: dict) -> tuple[str, str, str]:
    return reply["p_cnt"]["$"], reply["p_elems"]["$"], reply["p_num"]["$"]


def test_the_address_list_in_pages(ipmanager, app):
    app.page_size = 1
    first, second = doc(ipmanager, "ip", credentials=ADMIN), doc(ipmanager, "ip", credentials=ADMIN, p_num="2")
    assert ([elem["ip"]["$"] for elem in first["elem"]], paging(first)) == ([IP], ("1", "2", "1"))
    assert ([elem["ip"]["$"] for elem in second["elem"]], paging(second)) == (["133.31.223.200"], ("1", "2", "2"))


@pytest.mark.parametrize(("func", "rows"), [("iptype", "2"), ("actionlist", "7")])
def test_the_other_lists_in_pages(ipmanager, func, rows):
    ipmanager.app.page_size = 1
    reply = doc(ipmanager, func, credentials=ADMIN, p_num="2")
    assert (len(reply["elem"]), paging(reply)) == (1, ("1", rows, "2"))


def test_short_pages_announce_more_rows_than_they_give(ipmanager, app):
    app.page_size, app.short_pages = 2, True
    reply = doc(ipmanager, "ip", credentials=ADMIN)
    assert ([elem["ip"]["$"] for elem in reply["elem"]], paging(reply)) == ([IP], ("2", "2", "1"))


def test_paging_switches_are_constructor_switches():
    with EmulatorServer(IPmanagerEmulator(page_size=1, short_pages=True)) as server:
        reply = doc(server, "iptype", credentials=ADMIN)
        assert (reply["elem"], paging(reply)) == ([], ("1", "2", "1"))
