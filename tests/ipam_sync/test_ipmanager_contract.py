"""IPmanagerClient against the in-process emulator over real HTTP (docs/ipmanager-api.md).

The client is only as right as the emulator it is tested against: these tests pin what both speak —
levels, the seed's pool (133.31.223.0-133.31.223.128 of 133.31.223.0/24, group alias), hidden ranges,
who sees which address, the documented error types, transport faults, scale and secrets.
"""

import ipaddress
import logging
import time

import pytest

from ipam_sync.ipmanager.client import Address, IPmanagerClient
from ipam_sync.ipmanager.emulator import IPmanagerEmulator
from provisioning.coremanager.client import LEVEL_ADMIN, LEVEL_USER
from provisioning.coremanager.emulator import EmulatorServer
from provisioning.coremanager.errors import (
    AccessDenied,
    AlreadyExists,
    AuthFailed,
    CutOff,
    InvalidValue,
    LimitReached,
    NotFound,
    PanelFailure,
    PermanentError,
    ProvisioningError,
    Timeout,
    TLSFailed,
    TransientError,
    Unreachable,
)

TIMEOUT = (2, 5)
USER = ("billing", "secret")
ADMIN = ("admin", "secret")
POOL = "133.31.223.0-133.31.223.128"
NOTE = "billing:service-42"


def login(server, *credentials, **kwargs) -> IPmanagerClient:
    """A client of the server as LOGIN, PASSWORD (the seed's user billing when not given)."""
    return IPmanagerClient(server.url, *(credentials or USER), **{"timeout": TIMEOUT} | kwargs)


@pytest.fixture
def app(ipmanager) -> IPmanagerEmulator:
    return ipmanager.app


@pytest.fixture
def client(ipmanager) -> IPmanagerClient:
    return login(ipmanager)


@pytest.fixture
def admin(ipmanager) -> IPmanagerClient:
    return login(ipmanager, *ADMIN)


def raises(cls, call, *args, **kwargs) -> ProvisioningError:
    with pytest.raises(cls) as info:
        call(*args, **kwargs)
    return info.value


def allocate(client, **kwargs) -> str:
    return client.allocate(**{"iptype": "alias", "domain": "", "note": NOTE} | kwargs)


def as_int(ip: str) -> int:
    return int(ipaddress.ip_address(ip))


def in_range(ip: str, first: str, last: str) -> bool:
    return as_int(first) <= as_int(ip) <= as_int(last)


def user_with(server, name, *, pools=(), hidden=(), groups=("alias",)) -> IPmanagerClient:
    """A new IPmanager user with these permissions, logged in."""
    server.app.add_user(name, f"{name}-pass-1", pools=pools, hidden=hidden, groups=groups)
    return login(server, name, f"{name}-pass-1")


def take_all(client, limit=300) -> list[str]:
    """Allocate until the pool is used up; the addresses in order."""
    taken = []
    for _ in range(limit):
        try:
            taken.append(allocate(client))
        except LimitReached as error:
            assert error.object == "ip"
            return taken
    raise AssertionError("the pool never ran out")


# A. The client's functions


@pytest.mark.parametrize(("credentials", "level"), [(USER, 16), (ADMIN, 29)], ids=["user", "admin"])
def test_the_caller_gives_name_and_level(ipmanager, credentials, level):
    assert login(ipmanager, *credentials).caller() == (credentials[0], level)
    assert login(ipmanager, *credentials).whoami() == (credentials[0], level)
    assert level in (LEVEL_USER, LEVEL_ADMIN)


def test_seed_scenario_next_free_alias_address_with_ptr_and_note(client, app):
    ip = client.allocate(iptype="alias", domain="shop.example.com", note=NOTE)
    assert in_range(ip, "133.31.223.0", "133.31.223.128")
    assert app.allocated[as_int(ip)] == {"ip": ip, "iptype": "alias", "domain": "shop.example.com", "note": NOTE, "owner": "billing"}
    assert client.address(ip) == Address(ip=ip, iptype="alias", domain="shop.example.com", note=NOTE)
    assert allocate(client) != ip  # the next one is another address


def test_allocating_a_given_address_inside_the_pool(client, app):
    assert allocate(client, ip="133.31.223.50", domain="a.example.com") == "133.31.223.50"
    assert app.owned_by("billing") == ["133.31.223.50"]
    assert app.allocated[as_int("133.31.223.50")]["domain"] == "a.example.com"


@pytest.mark.parametrize(
    ("kwargs", "kind", "obj"),
    [
        ({"ip": "133.31.223.200"}, AccessDenied, "ip"),  # in the network, outside the user's pool
        ({"ip": "10.0.0.1"}, InvalidValue, "ip"),  # in no network
        ({"ip": "133.31.223.5"}, AlreadyExists, "ip"),  # taken by hand below
        ({"ip": "not-an-address"}, InvalidValue, "ip"),
        ({"iptype": "public"}, AccessDenied, "iptype"),  # a group the user may not use
        ({"iptype": "nope"}, InvalidValue, "iptype"),
        ({"family": "ipv6"}, InvalidValue, "family"),
    ],
    ids=["outside-pool", "no-network", "taken", "not-an-ip", "group-not-allowed", "unknown-group", "ipv6"],
)
def test_allocation_errors_are_permanent_and_typed(client, app, kwargs, kind, obj):
    app.take("133.31.223.5", owner="someone")
    error = raises(kind, allocate, client, **kwargs)
    assert isinstance(error, PermanentError)
    assert error.object == obj
    assert app.owned_by("billing") == []


def test_the_administrator_allocates_on_behalf_of_a_user(client, admin, app):
    assert admin.allocate(iptype="alias", domain="s.example.com", note=NOTE, ip="133.31.223.60", owner="billing") == "133.31.223.60"
    assert [(a.ip, a.domain) for a in client.addresses()] == [("133.31.223.60", "s.example.com")]
    assert admin.allocate(iptype="public", domain="", note="") == "133.31.223.1"  # next free of the whole network
    assert app.allocated[as_int("133.31.223.1")]["owner"] == "admin"


def test_an_exhausted_pool_is_limit_ip_after_all_128_addresses(client, app):
    taken = take_all(client)
    assert taken == [f"133.31.223.{n}" for n in range(1, 129)]  # .0 is the network address
    error = raises(LimitReached, allocate, client)
    assert isinstance(error, PermanentError)
    assert (error.object, str(error.message)) == ("ip", "There are no free addresses in your pool")
    assert len(app.allocated) == 128


def test_a_hidden_range_is_never_picked_automatically_but_can_be_asked_for(ipmanager, app):
    hiding = user_with(ipmanager, "hiding", pools=["133.31.223.1-133.31.223.2"], hidden=["133.31.223.3-133.31.223.4"])
    assert take_all(hiding) == ["133.31.223.1", "133.31.223.2"]
    assert allocate(hiding, ip="133.31.223.3") == "133.31.223.3"
    assert sorted(app.owned_by("hiding")) == ["133.31.223.1", "133.31.223.2", "133.31.223.3"]


def test_a_hidden_range_inside_the_pool_is_not_picked_automatically(ipmanager):
    hiding = user_with(ipmanager, "hiding", pools=["133.31.223.1-133.31.223.4"], hidden=["133.31.223.2-133.31.223.3"])
    assert take_all(hiding) == ["133.31.223.1", "133.31.223.4"]


def test_a_pool_across_two_networks_hands_out_their_addresses(ipmanager, app):
    app.add_network("10.9.0.0/31")
    app.add_network("10.9.0.2/31")
    user = user_with(ipmanager, "carol", pools=["10.9.0.0/30"])
    assert take_all(user) == ["10.9.0.0", "10.9.0.1", "10.9.0.2", "10.9.0.3"]


@pytest.mark.parametrize(
    ("pool", "expected"),
    [
        ("133.31.223.64/30", ["133.31.223.64", "133.31.223.65", "133.31.223.66", "133.31.223.67"]),
        ("133.31.223.77", ["133.31.223.77"]),
    ],
    ids=["subnet", "single-address"],
)
def test_pools_given_as_a_subnet_or_one_address(ipmanager, pool, expected):
    user = user_with(ipmanager, "carol", pools=[pool])
    assert take_all(user) == expected


def test_a_user_lists_only_its_own_addresses_without_owner_the_administrator_all_with_owner(client, admin, app):
    mine = [allocate(client, domain=f"d{n}.example.com") for n in range(2)]
    app.take("133.31.223.200", owner="other", iptype="public", domain="other.example.com", note="by hand")
    assert client.addresses() == [Address(ip=ip, iptype="alias", domain=f"d{n}.example.com", note=NOTE) for n, ip in enumerate(mine)]
    assert {(a.ip, a.owner) for a in admin.addresses()} == {(mine[0], "billing"), (mine[1], "billing"), ("133.31.223.200", "other")}
    assert admin.address("133.31.223.200") == Address("133.31.223.200", "public", "other.example.com", "by hand", "other")


@pytest.mark.parametrize("ip", ["133.31.223.9", "133.31.223.200", "10.0.0.1", "not-an-address"])
def test_address_is_none_when_missing_or_not_the_users(client, app, ip):
    app.take("133.31.223.200", owner="other")
    assert client.address(ip) is None


def test_release_one_and_the_group_form(client, app):
    a, b, c = (allocate(client) for _ in range(3))
    client.release(a)
    assert sorted(app.owned_by("billing")) == sorted([b, c])
    client.release(b, c)
    assert app.allocated == {}
    assert app.calls[-1] == ("ip.delete", {"elid": f"{b}, {c}"})


def test_release_with_an_address_twice_in_the_group_releases_it_once(client, app):
    ip = allocate(client)
    client.release(ip, ip)
    assert app.allocated == {}


def test_a_just_released_address_is_not_handed_out_again_until_ipmanager_checked_it(client, ipmanager):
    ip = allocate(client)
    client.release(ip)
    assert allocate(client) != ip

    ipmanager.app.run_checks()

    assert allocate(client) == ip


def test_releasing_a_missing_address_is_not_found(client):
    error = raises(NotFound, client.release, "133.31.223.9")
    assert error.object == "ip"


def test_a_user_releasing_another_users_address_is_not_found_and_it_stays(client, app):
    app.take("133.31.223.10", owner="other")
    mine = allocate(client)
    raises(NotFound, client.release, mine, "133.31.223.10")
    assert sorted(app.owned_by("other") + app.owned_by("billing")) == sorted(["133.31.223.10", mine])  # nothing released


def test_iptypes_user_gets_its_allowed_groups_the_administrator_all(client, admin):
    assert client.iptypes() == ["alias"]
    assert admin.iptypes() == ["alias", "public"]


def test_the_dummy_user_authenticates_sees_nothing_and_may_not_allocate(ipmanager, app):
    app.add_user("dummy", "pw")
    dummy = login(ipmanager, "dummy", "pw")
    app.take("133.31.223.3", owner="billing")
    assert dummy.caller() == ("dummy", LEVEL_USER)
    assert (dummy.addresses(), dummy.iptypes()) == ([], [])
    raises(AccessDenied, allocate, dummy)
    assert app.owned_by("dummy") == []


@pytest.mark.parametrize("credentials", [("billing", "wrong"), ("admin", "wrong"), ("nobody", "secret")])
def test_wrong_password_is_a_permanent_auth_error_with_a_clear_message(ipmanager, credentials):
    error = raises(AuthFailed, login(ipmanager, *credentials).caller)
    assert error.object == "badpassword"
    assert "wrong username or password" in error.message


# B. Transport and faults


def test_panel_down_is_a_transient_connection_error(client, app):
    app.faults.down = True
    assert isinstance(raises(Unreachable, client.caller), TransientError)


def test_reply_slower_than_the_read_timeout_is_a_transient_timeout(ipmanager, app):
    app.faults.delay = 0.6
    raises(Timeout, login(ipmanager, timeout=(2, 0.2)).caller)


def test_fail_next_is_http_503_transient_then_success(ipmanager, client, app):
    app.faults.fail_next()
    error = raises(PanelFailure, client.addresses)
    assert str(error.message) == f"127.0.0.1:{ipmanager.port} answered HTTP 503"
    assert client.addresses() == []


def test_a_list_cut_off_mid_transfer_is_transient_incomplete_and_the_next_call_works(client, app):
    mine = [allocate(client) for _ in range(5)]
    app.faults.cut_reply_next(func="ip")
    assert client.caller() == ("billing", LEVEL_USER)  # another function is not cut
    assert isinstance(raises(CutOff, client.addresses), TransientError)
    assert [a.ip for a in client.addresses()] == mine


def test_a_dropped_allocation_reply_is_transient_though_the_address_was_allocated(client, app):
    app.faults.drop_reply_next(func="ip.edit")
    raises(Unreachable, allocate, client, ip="133.31.223.7", domain="shop.example.com")
    assert app.allocated[as_int("133.31.223.7")]["note"] == NOTE  # act, then drop
    raises(AlreadyExists, allocate, client, ip="133.31.223.7")  # what the retry meets
    assert client.address("133.31.223.7").domain == "shop.example.com"


@pytest.fixture
def tls_panel(ipmanager):
    with EmulatorServer(ipmanager.app, tls=True) as server:
        yield server


def test_tls_with_verification_refuses_the_self_signed_certificate(tls_panel):
    error = raises(TLSFailed, login(tls_panel, verify=True).caller)
    assert f"TLS certificate of 127.0.0.1:{tls_panel.port}" in error.message


def test_tls_with_the_panels_certificate_as_ca_works(tls_panel, tmp_path):
    ca = tmp_path / "ipmanager.pem"
    ca.write_text(tls_panel.certificate)
    assert login(tls_panel, verify=str(ca)).caller() == ("billing", LEVEL_USER)


# C. Scale


def test_thirty_thousand_addresses_in_a_slash_16(ipmanager, app):
    app.add_network("10.20.0.0/16")
    big = user_with(ipmanager, "big", pools=["10.20.0.0/16"])
    first = as_int("10.20.0.0")
    for n in range(30_000):
        ip = str(ipaddress.ip_address(first + n))
        app.allocated[first + n] = {"ip": ip, "iptype": "alias", "domain": f"h{n}.example.com", "note": NOTE, "owner": "big"}
    started = time.perf_counter()
    listed = big.addresses()
    elapsed = time.perf_counter() - started
    print(f"\naddresses() of 30,000 took {elapsed:.2f} s")
    assert len(listed) == 30_000
    assert listed[-1] == Address("10.20.117.47", "alias", "h29999.example.com", NOTE)
    started = time.perf_counter()
    assert allocate(big) == "10.20.117.48"
    print(f"allocating the next free one took {time.perf_counter() - started:.2f} s")


# E. Secrets


def test_emulator_calls_never_record_passwords_or_authinfo(ipmanager, app):
    carol = user_with(ipmanager, "carol", pools=[POOL])
    ip = allocate(carol, domain="c.example.com")
    carol.addresses()
    carol.address(ip)
    carol.release(ip)
    login(ipmanager, *ADMIN).addresses()
    raises(PermanentError, login(ipmanager, "carol", "wrong-pass-2").caller)
    # The allocation, its read-back (the note confirms it), then the list, the read, the release and the administrator's list.
    assert [func for func, _ in app.calls] == ["ip.edit", "ip.edit", "ip", "ip.edit", "ip.delete", "ip"]
    assert not {"authinfo", "password", "passwd", "auth"} & {key for _, params in app.calls for key in params}
    recorded = repr(app.calls)
    for secret in ("carol-pass-1", "wrong-pass-2", "secret"):
        assert secret not in recorded


def test_client_debug_log_and_repr_never_contain_the_password(ipmanager, caplog):
    caplog.set_level(logging.DEBUG, logger="provisioning.coremanager.client")
    carol = user_with(ipmanager, "carol", pools=[POOL])
    allocate(carol)
    assert "ip.edit" in caplog.text
    assert "carol-pass-1" not in caplog.text + repr(carol)
    assert "authinfo" not in caplog.text
