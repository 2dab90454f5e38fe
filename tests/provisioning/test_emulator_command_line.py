"""The panel emulators as a person runs them: command-line flags, the fault control URL, --state.

The command line is run for real (a subprocess on a free loopback port); the control URL and the
state file are also tested in-process, where the app's faults and data can be read directly.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from ipam_sync.ipmanager.emulator import IPmanagerEmulator
from provisioning.coremanager.emulator import EmulatorServer, StateFileError
from provisioning.ispmanager.emulator import ISPmanagerEmulator

ROOT = Path(__file__).resolve().parents[2]
ISPMANAGER = "provisioning.ispmanager.emulator"
IPMANAGER = "ipam_sync.ipmanager.emulator"
BOTH = pytest.mark.parametrize("module", [ISPMANAGER, IPMANAGER], ids=["ispmanager", "ipmanager"])


def run_cli(module: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603 - our own emulator
        [sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True, text=True, timeout=30, check=False
    )


def _interruptible():
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Running:
    """An emulator started from its command line on a free port; `url` is its API address."""

    def __init__(self, module: str, *args: str):
        self.process = subprocess.Popen(  # noqa: S603 - our own emulator
            [sys.executable, "-m", module, "--port", "0", *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            # Ctrl-C works even when the tests run in the background, where a shell starts them with SIGINT ignored.
            preexec_fn=_interruptible,
        )
        first_line = self.process.stdout.readline()
        if " on http://" not in first_line:
            self.stop()
            raise AssertionError(f"the emulator did not start: {first_line}{self.process.stderr.read()}")
        self.url = first_line.split(" on ", 1)[1].strip()
        self.root = self.url.rsplit("/", 1)[0]
        self.banner = first_line + self.process.stdout.readline() + (self.process.stdout.readline() if "--state" in args else "")

    def stop(self):
        self.process.send_signal(signal.SIGINT)  # Ctrl-C, as make run stops it
        self.process.wait(timeout=10)
        self.process.stdout.close()
        self.process.stderr.close()


def call(url: str, func: str, credentials: str, **params) -> requests.Response:
    return requests.post(url, data={"func": func, "out": "json", "authinfo": credentials, **params}, timeout=5)


def add_user(url: str, name: str) -> requests.Response:
    return call(url, "user.add.finish", "root:pw", sok="ok", name=name, passwd="p1", confirm="p1", preset="Site hosting")


def take_address(url: str) -> str:
    return call(url, "ip.edit", "billing:billing-demo", sok="ok", family="ipv4", iptype="alias").json()["doc"]["id"]["$"]


# Bad arguments are a message and exit code 2, never a traceback, and nothing starts.


@BOTH
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--admin", "rootsecret"], "argument --admin: expected LOGIN:PASSWORD, got 'rootsecret'"),
        (["--admin", ":secret"], "argument --admin: expected LOGIN:PASSWORD, got ':secret'"),
        (["--admin", "root:"], "argument --admin: expected LOGIN:PASSWORD, got 'root:'"),
        (["--port", "70000"], "argument --port: expected a port from 0 to 65535"),
        (["--port", "http"], "argument --port: expected a port from 0 to 65535"),
        (["--slow", "fast"], "slow is a number of seconds from 0 to 600, not 'fast'"),
        (["--slow", "-1"], "slow is a number of seconds from 0 to 600, not '-1'"),
        (["--fail-next", "-2"], "fail_next is a whole number of calls"),
        (["--lose-next", "many"], "lose_next is a whole number of calls"),
        (["--cut-next", "1.5"], "cut_next is a whole number of calls"),
        (["--root", "boss"], "argument --root: expected LOGIN:PASSWORD, got 'boss'"),
        (["--page-size", "-1"], "argument --page-size: expected a number of rows from 0 to 1000000 (0: no paging), got '-1'"),
        (["--page-size", "ten"], "argument --page-size: expected a number of rows"),
        (["--rename", "ip.delete"], "argument --rename: expected OLD=NEW (e.g. ip.delete=ip.free), got 'ip.delete'"),
        (["--rename", "=ip.free"], "argument --rename: expected OLD=NEW"),
    ],
)
def test_a_bad_argument_is_an_error_message_not_a_traceback(module, args, message):
    result = run_cli(module, *args)

    assert result.returncode == 2
    assert message in result.stderr
    assert "usage:" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_the_edition_is_business_or_lite():
    result = run_cli(ISPMANAGER, "--edition", "pro")
    assert result.returncode == 2
    assert "invalid choice: 'pro'" in result.stderr
    assert "Traceback" not in result.stderr


@BOTH
def test_a_port_in_use_is_an_error_message(module):
    running = Running(module)
    try:
        port = running.url.split(":")[2].split("/")[0]
        result = run_cli(module, "--port", port)
    finally:
        running.stop()
    assert result.returncode == 1
    assert f"error: cannot listen on 127.0.0.1:{port}: Address already in use" in result.stderr
    assert "Traceback" not in result.stderr


@BOTH
def test_help_documents_the_fault_flags_and_the_control_url(module):
    result = run_cli(module, "--help")
    assert result.returncode == 0
    for text in ["--down", "--slow SECONDS", "--fail-next N", "--lose-next N", "--cut-next N", "--state FILE", "/_control"]:
        assert text in result.stdout
    for setting in ["fail_next=2", "lose_next=1", "cut_next=1", "slow=5", "down=1", "clear=1"]:
        assert f"-d {setting} " in result.stdout
    assert "(down=0: up again)" in result.stdout


@pytest.mark.parametrize(
    ("module", "own_flags"),
    [(ISPMANAGER, ["--edition", "--no-form-active", "--license-text TEXT"]), (IPMANAGER, ["--no-allocate-id"])],
    ids=["ispmanager", "ipmanager"],
)
def test_help_documents_the_levels_and_the_switches_of_the_unconfirmed_alternatives(module, own_flags):
    result = run_cli(module, "--help")
    common = ["--admin LOGIN:PASSWORD", "level 29", "--root LOGIN:PASSWORD", "level 30", "--no-whoami-level", "--page-size N"]
    common += ["--short-pages", "--missing-function NAME", "--rename OLD=NEW"]
    for text in common + own_flags:
        assert text in result.stdout
    assert "--no-allocate-id" not in result.stdout if module == ISPMANAGER else "--no-form-active" not in result.stdout


# The switches from the command line, on a running emulator.


def test_ispmanager_switches_from_the_command_line():
    running = Running(
        ISPMANAGER,
        *("--admin", "root:pw", "--root", "boss:pw2", "--no-whoami-level", "--no-form-active"),
        *("--page-size", "2", "--short-pages", "--license-text", "ISPmanager Lite 5.290"),
        *("--missing-function", "session.newkey", "--missing-function", "usrparam", "--rename", "user.add.finish=user.create"),
    )
    try:
        assert call(running.url, "auth", "", username="boss", password="pw2").json()["doc"]["auth"]["$level"] == "30"
        assert call(running.url, "whoami", "root:pw").json()["doc"] == {"user": {"$name": "root"}}
        assert call(running.url, "license.info", "root:pw").json()["doc"]["panel_name"] == {"$": "ISPmanager Lite 5.290"}
        for name in ("alice", "bob", "carol"):
            created = call(running.url, "user.create", "root:pw", sok="ok", name=name, passwd="p1", confirm="p1", fullname="F")
            assert created.json()["doc"]["id"] == {"$": name}
        assert "fullname" not in call(running.url, "user.edit", "root:pw", elid="alice").json()["doc"]
        users = call(running.url, "user", "root:pw").json()["doc"]
        assert ([row["name"]["$"] for row in users["elem"]], users["p_elems"], users["p_cnt"]) == (["alice"], {"$": "3"}, {"$": "2"})
        for missing in ("session.newkey", "usrparam", "user.add.finish"):
            assert call(running.url, missing, "root:pw").json()["doc"]["error"]["$type"] == "missed"
    finally:
        running.stop()


def test_ipmanager_switches_from_the_command_line():
    running = Running(
        IPMANAGER,
        *("--no-allocate-id", "--rename", "ip.delete=ip.free", "--missing-function", "iptype", "--page-size", "5"),
    )
    try:
        allocated = call(running.url, "ip.edit", "billing:billing-demo", sok="ok", family="ipv4", iptype="alias", domain="a.example.")
        assert allocated.json()["doc"] == {"ok": {}}
        listed = call(running.url, "ip", "billing:billing-demo").json()["doc"]
        assert ([(row["ip"]["$"], row["domain"]["$"]) for row in listed["elem"]], listed["p_elems"]) == (
            [("133.31.223.1", "a.example.")],
            {"$": "1"},
        )
        assert call(running.url, "ip.delete", "billing:billing-demo", elid="133.31.223.1").json()["doc"]["error"]["$type"] == "missed"
        assert call(running.url, "ip.free", "billing:billing-demo", elid="133.31.223.1").json()["doc"] == {"ok": {}}
        assert call(running.url, "iptype", "billing:billing-demo").json()["doc"]["error"]["$object"] == "func"
        pages = [call(running.url, "actionlist", "billing:billing-demo", p_num=str(n)).json()["doc"]["elem"] for n in (1, 2)]
        assert [len(rows) for rows in pages] == [5, 1]
        assert {row["name"]["$"] for rows in pages for row in rows} == {"auth", "actionlist", "whoami", "ip", "ip.edit", "ip.free"}
    finally:
        running.stop()


# Fault flags at start, then the control URL of the running process.


def test_fail_next_at_start_fails_that_many_calls_then_the_control_url_switches_more():
    running = Running(ISPMANAGER, "--admin", "root:pw", "--fail-next", "2")
    try:
        assert "fail_next=2" in running.banner
        assert [call(running.url, "whoami", "root:pw").status_code for _ in range(3)] == [503, 503, 200]

        assert requests.post(f"{running.root}/_control", data={"fail_next": "1"}, timeout=5).json()["fail_next"] == 1
        assert [call(running.url, "whoami", "root:pw").status_code for _ in range(2)] == [503, 200]
    finally:
        running.stop()


def test_down_at_start_drops_calls_until_the_control_url_brings_it_up():
    running = Running(IPMANAGER, "--down")
    try:
        with pytest.raises(requests.ConnectionError):
            call(running.url, "whoami", "billing:billing-demo")
        assert requests.get(f"{running.root}/_control", timeout=5).json()["down"] is True

        requests.post(f"{running.root}/_control", data={"down": "0"}, timeout=5)

        assert call(running.url, "whoami", "billing:billing-demo").json()["doc"]["user"]["$name"] == "billing"
    finally:
        running.stop()


def test_slow_at_start_delays_every_reply():
    running = Running(ISPMANAGER, "--admin", "root:pw", "--slow", "0.4")
    try:
        start = time.monotonic()
        assert call(running.url, "whoami", "root:pw").status_code == 200
        assert time.monotonic() - start >= 0.4
    finally:
        running.stop()


# The control URL, in-process.


@pytest.fixture
def panel():
    with EmulatorServer(ISPmanagerEmulator(admins={"root": "pw"})) as server:
        server.app.add_preset("Site hosting", limit_db=25)
        server.control = server.url.replace("/ispmgr", "/_control")
        yield server


def test_the_control_url_shows_nothing_switched_on_at_first(panel):
    reply = requests.get(panel.control, timeout=5)
    assert reply.status_code == 200
    assert reply.json() == {"down": False, "slow": 0.0, "fail_next": 0, "lose_next": 0, "cut_next": 0}


def test_lose_next_carries_out_the_call_and_drops_its_reply(panel):
    requests.post(panel.control, data={"lose_next": "1"}, timeout=5)

    with pytest.raises(requests.ConnectionError):
        add_user(panel.url, "lost")

    assert "lost" in panel.app.users
    assert add_user(panel.url, "kept").json()["doc"]["id"]["$"] == "kept"


def test_cut_next_stops_the_reply_halfway(panel):
    requests.post(panel.control, data={"cut_next": "1"}, timeout=5)

    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        call(panel.url, "user", "root:pw")
    assert call(panel.url, "user", "root:pw").status_code == 200


def test_fail_next_with_a_function_and_an_error_type_spoils_only_that_function(panel):
    requests.post(panel.control, data={"fail_next": "1", "func": "user.add.finish", "error_type": "exists"}, timeout=5)

    assert call(panel.url, "whoami", "root:pw").status_code == 200
    assert add_user(panel.url, "alice").json()["doc"]["error"]["$type"] == "exists"
    assert panel.app.users == {}
    assert add_user(panel.url, "alice").json()["doc"]["id"]["$"] == "alice"


def test_slow_and_clear(panel):
    assert requests.post(panel.control, data={"slow": "0.3", "fail_next": "5"}, timeout=5).json()["slow"] == 0.3
    assert panel.app.faults.delay == 0.3

    assert requests.post(panel.control, data={"clear": "1"}, timeout=5).json() == requests.get(panel.control, timeout=5).json()
    assert panel.app.faults.summary() == {"down": False, "slow": 0.0, "fail_next": 0, "lose_next": 0, "cut_next": 0}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"fail_next": "x"}, "fail_next is a whole number of calls from 0 to 1000000, not 'x'"),
        ({"slow": "nan"}, "slow is a number of seconds from 0 to 600, not 'nan'"),
        ({"slow": "1e9"}, "slow is a number of seconds from 0 to 600"),
        ({"down": "maybe"}, "down is 1 or 0, not 'maybe'"),
        ({"explode": "1"}, "unknown setting explode; known: clear, cut_next, down, error_type, fail_next, func, lose_next, slow"),
        ({"down": "1", "lose_next": "-1"}, "lose_next is a whole number of calls"),
    ],
)
def test_a_bad_control_setting_is_a_400_with_the_reason_and_changes_nothing(panel, data, message):
    reply = requests.post(panel.control, data=data, timeout=5)

    assert reply.status_code == 400
    assert message in reply.json()["error"]
    assert panel.app.faults.summary() == {"down": False, "slow": 0.0, "fail_next": 0, "lose_next": 0, "cut_next": 0}


# --state: the panel's data survives a restart; only given it, the emulator touches no file.


def test_the_state_file_keeps_users_and_addresses_across_a_restart_from_the_command_line(tmp_path):
    isp_state, ip_state = tmp_path / "var" / "isp.json", tmp_path / "var" / "ip.json"
    isp = Running(ISPMANAGER, "--admin", "root:pw", "--state", str(isp_state))
    ip = Running(IPMANAGER, "--state", str(ip_state))
    try:
        assert f"its data is kept in {isp_state}" in isp.banner
        assert add_user(isp.url, "user1").status_code == 200
        first = take_address(ip.url)
    finally:
        isp.stop()
        ip.stop()

    isp, ip = Running(ISPMANAGER, "--admin", "root:pw", "--state", str(isp_state)), Running(IPMANAGER, "--state", str(ip_state))
    try:
        user = call(isp.url, "user.edit", "root:pw", elid="user1").json()["doc"]
        assert (user["name"]["$"], user["preset"]["$"], user["limit_db"]["$"]) == ("user1", "Site hosting", "25")
        listed = call(ip.url, "ip", "billing:billing-demo").json()["doc"]["elem"]
        assert [row["ip"]["$"] for row in listed] == [first]
        assert take_address(ip.url) not in (first, "")
    finally:
        isp.stop()
        ip.stop()
    assert sorted(path.name for path in isp_state.parent.iterdir()) == ["ip.json", "isp.json"]  # no temporary files left


def test_each_changing_call_is_saved_at_once_and_reads_do_not_rewrite(tmp_path):
    path = tmp_path / "isp.json"
    app = ISPmanagerEmulator(admins={"root": "pw"})
    app.add_preset("Site hosting", limit_db=25)
    app.keep_state_in(path)
    with EmulatorServer(app) as server:
        add_user(server.url, "user1")
        saved = json.loads(path.read_text())
        assert saved["users"]["user1"]["active"] is True
        written = path.stat().st_mtime_ns

        call(server.url, "user", "root:pw")
        call(server.url, "user.edit", "root:pw", elid="user1")
        assert path.stat().st_mtime_ns == written

        call(server.url, "user.suspend", "root:pw", elid="user1")
        assert json.loads(path.read_text())["users"]["user1"]["active"] is False


def test_a_refused_call_leaves_the_state_file_as_it_was(tmp_path):
    path = tmp_path / "ip.json"
    app = IPmanagerEmulator()
    app.add_network("133.31.223.0/24")
    app.add_user("billing", "pw", pools=["133.31.223.0-133.31.223.1"], groups=["alias"])
    app.keep_state_in(path)
    with EmulatorServer(app) as server:
        call(server.url, "ip.edit", "billing:pw", sok="ok", family="ipv4", iptype="alias")
        before = path.read_text()
        reply = call(server.url, "ip.edit", "billing:pw", sok="ok", family="ipv4", iptype="alias").json()["doc"]
        assert reply["error"]["$type"] == "limit"
        assert path.read_text() == before


def test_without_a_state_file_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with EmulatorServer(ISPmanagerEmulator(admins={"root": "pw"})) as server:
        server.app.add_preset("Site hosting")
        assert add_user(server.url, "user1").json()["doc"]["id"]["$"] == "user1"
    assert list(tmp_path.iterdir()) == []


@BOTH
def test_an_unreadable_state_file_is_an_error_message_and_is_left_alone(module, tmp_path):
    path = tmp_path / "state.json"
    path.write_text('{"users": ')

    result = run_cli(module, "--port", "0", "--state", str(path))

    assert result.returncode == 1
    assert f"cannot read the state file {path}" in result.stderr
    assert "move it away to start afresh" in result.stderr
    assert "Traceback" not in result.stderr
    assert path.read_text() == '{"users": '


def test_keep_state_in_raises_a_typed_error_for_a_file_of_the_wrong_shape(tmp_path):
    path = tmp_path / "ip.json"
    path.write_text(json.dumps({"networks": "everything"}))
    with pytest.raises(StateFileError, match="cannot read the state file"):
        IPmanagerEmulator().keep_state_in(path)


def test_the_state_file_is_replaced_whole_never_written_in_place(tmp_path):
    path = tmp_path / "isp.json"
    app = ISPmanagerEmulator(admins={"root": "pw"})
    app.add_preset("Site hosting", limit_db=25)
    app.keep_state_in(path)
    with EmulatorServer(app) as server:
        add_user(server.url, "user1")
        first_inode = os.stat(path).st_ino
        add_user(server.url, "user2")
    assert os.stat(path).st_ino != first_inode  # a new file renamed over the old one
    assert set(json.loads(path.read_text())["users"]) == {"user1", "user2"}
