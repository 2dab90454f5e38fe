"""The shared core of the panel emulators: COREmanager transport, replies and fault injection.

A subclass declares its functions; this module parses requests (GET query or POST form),
authenticates (`authinfo`, `auth` sessions, `func=auth`), answers in `out=json|xml|text`, and
misbehaves on demand: down, slow, failing the next N calls, or acting and then dropping the reply.
Tests set `app.faults` directly; a person sets them with command-line flags or POST /_control.
With `keep_state_in(path)` (the command line's --state) the panel's data survives a restart.

Where the documents leave a wire detail unconfirmed, a switch picks the alternative (constructor keyword,
attribute of the same name that a test may flip while the emulator runs, command-line flag):
  whoami_level=True        `whoami` answers `doc.user.$level`; False: only `$name`   (--no-whoami-level)
  page_size=0              lists in pages of this many rows (`p_num`, 1-based), with `p_cnt`,
                           `p_elems`, `p_num` in the reply; 0: one reply, no paging fields (--page-size N)
  short_pages=False        a paged reply drops its last row, still announcing every row in `p_elems`
                           (a capped list)                                            (--short-pages)
  missing_functions=()     these functions answer missed(func) and are not in `actionlist` (--missing-function NAME)
  rename={}                {"ip.delete": "ip.free"}: the function answers under the new name only (--rename OLD=NEW)
Callers: administrators (`admins`, --admin, level 29) and roots (`roots`, --root, level 30).
`func=auth` without `out` is a browser's login (by password or by a session.newkey key): it answers
an HTML page and sets the session cookie.
"""

import argparse
import contextlib
import html
import json
import os
import secrets
import socket
import ssl
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie
from pathlib import Path
from socketserver import ThreadingMixIn
from urllib.parse import parse_qsl
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from xml.sax.saxutils import escape, quoteattr

from provisioning.coremanager.client import LEVEL_ADMIN, LEVEL_ROOT, SECRET_PARAMS

SESSION_IDLE_SECONDS = 3600
CONTROL_PATH = "/_control"
CONTROL_SETTINGS = frozenset({"down", "slow", "fail_next", "lose_next", "cut_next", "func", "error_type", "clear"})
CONTROL_HELP = """\
Faults can be switched while it runs, at {url}{control}:
  curl {url}{control}                          what is switched on (JSON)
  curl -d fail_next=2 {url}{control}           the next 2 calls answer HTTP 503
  curl -d fail_next=1 -d error_type=exists -d func=user.add.finish {url}{control}
                                               the next user.add.finish answers the panel error 'exists'
  curl -d lose_next=1 {url}{control}           the next call is carried out, then its reply is lost
  curl -d cut_next=1 {url}{control}            the next reply stops halfway
  curl -d slow=5 {url}{control}                every reply waits 5 seconds (slow=0: no wait)
  curl -d down=1 {url}{control}                every call is dropped unanswered (down=0: up again)
  curl -d clear=1 {url}{control}               all faults off
"""


class PanelFault(Exception):
    """Raised by a function to answer with the panel's error reply."""

    def __init__(self, type: str, object: str, msg: str):
        super().__init__(msg)
        self.type, self.object, self.msg = type, object, msg


@dataclass
class Caller:
    name: str
    level: int


@dataclass
class _Rule:
    count: int
    func: str | None
    error_type: str | None = None


@dataclass
class Faults:
    """What the emulator does wrong, set by tests and read on every call."""

    down: bool = False
    delay: float = 0.0
    _failures: list = field(default_factory=list)
    _drops: list = field(default_factory=list)
    _cuts: list = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_next(self, count: int = 1, *, func: str | None = None, error_type: str | None = None) -> None:
        """The next `count` calls (of `func`, or any) fail: HTTP 503, or the panel's error `error_type`."""
        with self._lock:
            self._failures.append(_Rule(count, func, error_type))

    def drop_reply_next(self, count: int = 1, *, func: str | None = None) -> None:
        """The next `count` calls (of `func`, or any) do their work, then close the connection unanswered."""
        with self._lock:
            self._drops.append(_Rule(count, func))

    def cut_reply_next(self, count: int = 1, *, func: str | None = None) -> None:
        """The next `count` replies (of `func`, or any) stop halfway, as a connection lost mid-transfer."""
        with self._lock:
            self._cuts.append(_Rule(count, func))

    def clear(self) -> None:
        with self._lock:
            self.down, self.delay = False, 0.0
            self._failures.clear()
            self._drops.clear()
            self._cuts.clear()

    def summary(self) -> dict:
        """What is switched on, as the control URL shows it: counts are calls still to be spoiled."""
        with self._lock:
            pending = {name: sum(rule.count for rule in rules) for name, rules in self._switches().items()}
        return {"down": self.down, "slow": self.delay} | pending

    def apply(self, settings: dict[str, str]) -> None:
        """Switch faults on or off from text values (the control URL's form, the command line's flags).

        Raises ValueError naming the bad setting; then nothing is changed.
        """
        unknown = set(settings) - CONTROL_SETTINGS
        if unknown:
            raise ValueError(f"unknown setting {', '.join(sorted(unknown))}; known: {', '.join(sorted(CONTROL_SETTINGS))}")
        down = _switch(settings["down"]) if "down" in settings else None
        slow = _seconds(settings["slow"]) if "slow" in settings else None
        counts = {name: _count(name, settings[name]) for name in ("fail_next", "lose_next", "cut_next") if name in settings}
        func = settings.get("func") or None
        if settings.get("clear"):
            self.clear()
        if down is not None:
            self.down = down
        if slow is not None:
            self.delay = slow
        with self._lock:
            for name, count in counts.items():
                if count:
                    error_type = (settings.get("error_type") or None) if name == "fail_next" else None
                    self._switches()[name].append(_Rule(count, func, error_type))

    def _switches(self) -> dict[str, list]:
        return {"fail_next": self._failures, "lose_next": self._drops, "cut_next": self._cuts}

    def take_failure(self, func: str) -> _Rule | None:
        return self._take(self._failures, func)

    def take_drop(self, func: str) -> bool:
        return self._take(self._drops, func) is not None

    def take_cut(self, func: str) -> bool:
        return self._take(self._cuts, func) is not None

    def _take(self, rules: list, func: str) -> _Rule | None:
        with self._lock:
            for rule in rules:
                if rule.func in (None, func):
                    rule.count -= 1
                    if rule.count <= 0:
                        rules.remove(rule)
                    return rule
        return None


def _switch(value: str) -> bool:
    if value.lower() in ("1", "on", "true", "yes"):
        return True
    if value.lower() in ("0", "off", "false", "no", ""):
        return False
    raise ValueError(f"down is 1 or 0, not {value!r}")


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= 600:
        raise ValueError(f"slow is a number of seconds from 0 to 600, not {value!r}")
    return seconds


def _count(name: str, value: str) -> int:
    if not value.isdigit() or int(value) > 1_000_000:
        raise ValueError(f"{name} is a whole number of calls from 0 to 1000000, not {value!r}")
    return int(value)


class StateFileError(Exception):
    """The --state file exists but cannot be read back."""


class CoreEmulator:
    """A WSGI app speaking COREmanager. Subclasses fill `functions` and `path`; the switches are in the module's docstring.

    Subclasses that persist give `state()` (JSON-ready) and `restore(state)`.
    """

    path = "/"

    def __init__(
        self,
        *,
        admins: dict | None = None,
        roots: dict | None = None,
        whoami_level: bool = True,
        page_size: int = 0,
        short_pages: bool = False,
        missing_functions=(),
        rename: dict | None = None,
    ):
        if page_size < 0:
            raise ValueError("page_size is 0 (no paging) or more")
        self.whoami_level = whoami_level
        self.page_size = page_size
        self.short_pages = short_pages
        self.missing_functions: set[str] = set(missing_functions)
        self.rename: dict[str, str] = dict(rename or {})
        self.faults = Faults()
        self.lock = threading.RLock()
        self.calls: list[tuple[str, dict]] = []  # every authenticated call, secrets removed
        self.accounts: dict[str, tuple[str, int]] = {}  # API logins: name -> (password, level)
        self.sessions: dict[str, tuple[str, str, float]] = {}  # id -> (login, client address, last use)
        self.login_keys: dict[str, str] = {}  # one-time keys of session.newkey -> login
        self.state_path: Path | None = None
        self._saved_state = ""
        for name, password in (admins or {}).items():
            self.accounts[name] = (password, LEVEL_ADMIN)
        for name, password in (roots or {}).items():
            self.accounts[name] = (password, LEVEL_ROOT)

    @property
    def functions(self) -> dict:
        raise NotImplementedError

    def published_names(self) -> dict[str, str]:
        """The functions the panel answers to, each name on the wire -> the function's own name.

        `auth` and `actionlist` are every panel's; missing functions are left out, renamed ones answer
        under their new name only.
        """
        names = {}
        for name in ("auth", *self.functions, "actionlist"):
            wire = self.rename.get(name, name)
            if not {name, wire} & self.missing_functions:
                names[wire] = name
        return names

    @property
    def session_cookie(self) -> str:
        return f"{self.path.strip('/')}ses5"

    def authenticate(self, name: str, password: str) -> Caller | None:
        """The caller these credentials belong to, or None."""
        account = self.accounts.get(name)
        if account and secrets.compare_digest(account[0], password):
            return Caller(name, account[1])
        return None

    # Keeping the panel's data across restarts.

    def state(self) -> dict:
        raise NotImplementedError

    def restore(self, state: dict) -> None:
        raise NotImplementedError

    def keep_state_in(self, path: str | Path) -> None:
        """Load the data saved in `path`, if any, and save it there again after every call that changes it."""
        path = Path(path)
        if path.exists():
            try:
                self.restore(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
                raise StateFileError(f"cannot read the state file {path} ({error}); move it away to start afresh") from error
        self.state_path = path
        self._saved_state = self._state_text()

    def _state_text(self) -> str:
        return json.dumps(self.state(), ensure_ascii=False, sort_keys=True, indent=1)

    def _save_state(self) -> None:
        # Called under self.lock. Written to a temporary file, then renamed over the old one, so that
        # a crash mid-write leaves the previous state, never half a file.
        text = self._state_text()
        if text == self._saved_state:
            return
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=self.state_path.parent, delete=False) as file:
            file.write(text)
        os.replace(file.name, self.state_path)
        self._saved_state = text

    # WSGI

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") == CONTROL_PATH:
            return self._control(environ, start_response)
        if self.faults.down:
            return _drop(environ, start_response)
        if self.faults.delay:
            time.sleep(self.faults.delay)
        if environ.get("PATH_INFO", "/").rstrip("/") != self.path.rstrip("/"):
            return _html(start_response, "404 Not Found", "<html><body>Not found</body></html>")
        params = dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
        if environ["REQUEST_METHOD"] == "POST":
            size = int(environ.get("CONTENT_LENGTH") or 0)
            params.update(parse_qsl(environ["wsgi.input"].read(size).decode(), keep_blank_values=True))
        if not params.get("func") and "out" not in params:
            return self._browser_home(environ, start_response)
        # A browser (no `out`) logging in, as the "open panel" button sends it, gets a page rather than a doc.
        browser = params.get("func") == "auth" and "out" not in params
        func, out = params.pop("func", ""), params.pop("out", "xml")
        failure = self.faults.take_failure(func)
        if failure and not failure.error_type:
            return _html(start_response, "503 Service Unavailable", "<html><body>Service temporarily unavailable</body></html>")
        with self.lock:
            try:
                if failure:
                    raise PanelFault(failure.error_type, func, f"Injected {failure.error_type} error")
                doc = self._dispatch(func, params, environ.get("REMOTE_ADDR", ""))
            except PanelFault as fault:
                doc = {"error": {"$type": fault.type, "$object": fault.object, "$lang": "en", "msg": {"$": fault.msg}}}
            if self.state_path:
                self._save_state()
        if self.faults.take_drop(func):
            return _drop(environ, start_response)
        if browser:
            return self._browser_login(start_response, doc)
        body, content_type = _render(doc, out)
        start_response("200 OK", [("Content-Type", content_type), ("Content-Length", str(len(body)))])
        if self.faults.take_cut(func):
            return _half_then_drop(environ, body)
        return [body]

    def _control(self, environ, start_response):
        """GET: the faults switched on; POST: switch them (see CONTROL_HELP). Works while "down"."""
        if environ["REQUEST_METHOD"] == "POST":
            size = int(environ.get("CONTENT_LENGTH") or 0)
            try:
                self.faults.apply(dict(parse_qsl(environ["wsgi.input"].read(size).decode(), keep_blank_values=True)))
            except (ValueError, UnicodeDecodeError) as error:
                return _json(start_response, "400 Bad Request", {"error": str(error)})
        return _json(start_response, "200 OK", self.faults.summary())

    def _browser_home(self, environ, start_response):
        """The panel's page in a browser: who the session cookie logs in, or the login form."""
        try:
            cookie = SimpleCookie(environ.get("HTTP_COOKIE", ""))
        except CookieError:
            cookie = SimpleCookie()
        session = cookie[self.session_cookie].value if self.session_cookie in cookie else ""
        with self.lock:
            caller = self._session_caller(session, environ.get("REMOTE_ADDR", ""))
        if caller is None:
            return _html(start_response, "200 OK", _page("Log in", "<h1>Log in</h1><p>Enter your username and password.</p>"))
        return _html(start_response, "200 OK", _page("Panel", f"<h1>Logged in as {html.escape(caller.name)}</h1>"))

    def _browser_login(self, start_response, doc: dict):
        if "error" in doc:
            return _html(start_response, "200 OK", _page("Login failed", "<h1>Login failed</h1><p>Invalid username, password or key.</p>"))
        session = doc["auth"]["$id"]
        login = self.sessions[session][0]
        cookie = f"{self.session_cookie}={session}; Path=/; HttpOnly; SameSite=Lax"
        body = _page("Panel", f"<h1>Logged in as {html.escape(login)}</h1>")
        return _html(start_response, "200 OK", body, headers=[("Set-Cookie", cookie)])

    def _dispatch(self, func: str, params: dict, address: str) -> dict:
        name = self.published_names().get(func)
        if name is None:
            raise PanelFault("missed", "func", f"Function '{func}' not found")
        if name == "auth":
            return self._auth(params, address)
        caller = self._caller(params, address)
        self.calls.append((func, {key: value for key, value in params.items() if key not in SECRET_PARAMS | {"auth"}}))
        return self.actionlist(caller, params) if name == "actionlist" else self.functions[name](caller, params)

    def _caller(self, params: dict, address: str) -> Caller:
        if "authinfo" in params:
            name, _, password = params.pop("authinfo").partition(":")
            caller = self.authenticate(name, password)
        elif "auth" in params:
            caller = self._session_caller(params.pop("auth"), address)
        else:
            caller = None
        if caller is None:
            raise PanelFault("auth", "badpassword", "Invalid username or password")
        return caller

    def _auth(self, params: dict, address: str) -> dict:
        name = params.get("username", "")
        key = params.get("key")
        caller = self._caller_by_key(name, key) if key is not None else self.authenticate(name, params.get("password", ""))
        if caller is None:
            raise PanelFault("auth", "badpassword", "Invalid username or password")
        session = secrets.token_hex(12)
        self.sessions[session] = (caller.name, address, time.monotonic())
        return {"auth": {"$id": session, "$level": str(caller.level), "$": session}}

    def _caller_by_key(self, name: str, key: str) -> Caller | None:
        if self.login_keys.get(key) != name:
            return None
        del self.login_keys[key]
        return self.caller_named(name)

    def caller_named(self, name: str) -> Caller | None:
        """The caller a session or key belongs to, looked up again (its level may have changed)."""
        account = self.accounts.get(name)
        return Caller(name, account[1]) if account else None

    def _session_caller(self, session: str, address: str) -> Caller | None:
        known = self.sessions.get(session)
        if not known or known[1] != address or time.monotonic() - known[2] > SESSION_IDLE_SECONDS:
            self.sessions.pop(session, None)
            return None
        self.sessions[session] = (known[0], address, time.monotonic())
        return self.caller_named(known[0])

    # Functions every panel has.

    def whoami(self, caller: Caller, params: dict) -> dict:
        user = {"$name": caller.name}
        if self.whoami_level:
            user["$level"] = str(caller.level)
        return {"user": user}

    def actionlist(self, caller: Caller, params: dict) -> dict:
        return self.listing([{"name": name} for name in self.published_names()], params)

    def listing(self, rows: list[dict], params: dict) -> dict:
        """A list reply: every row, or with `page_size` the page `p_num` and the paging fields."""
        if not self.page_size:
            return elem_list(rows)
        number = params.get("p_num") or "1"
        if not (number.isdigit() and len(number) < 10 and int(number) >= 1):
            raise PanelFault("value", "p_num", f"Invalid page number '{number}'")
        start = (int(number) - 1) * self.page_size
        page = rows[start : start + self.page_size]
        if self.short_pages:
            page = page[:-1]
        paging = {"p_cnt": self.page_size, "p_elems": len(rows), "p_num": int(number)}
        return elem_list(page) | {key: {"$": str(value)} for key, value in paging.items()}


def ok(**values) -> dict:
    """A success reply; `values` become fields (`id="user117"` -> `"id": {"$": "user117"}`)."""
    return {"ok": {}, **{key: {"$": str(value)} for key, value in values.items()}}


def elem_list(rows: list[dict]) -> dict:
    return {"elem": [{key: {"$": str(value)} for key, value in row.items()} for row in rows]}


def _drop(environ, start_response):
    # wsgiref then fails to send the headers into the closed socket and gives up quietly.
    start_response("200 OK", [("Content-Length", "0")])
    environ["emulator.drop"]()
    return []


def _half_then_drop(environ, body: bytes):
    yield body[: len(body) // 2]
    environ["emulator.drop"]()


def _json(start_response, status: str, reply: dict):
    data = json.dumps(reply).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


def _html(start_response, status: str, body: str, *, headers=()):
    data = body.encode()
    start_response(status, [("Content-Type", "text/html"), ("Content-Length", str(len(data))), *headers])
    return [data]


def _page(title: str, body: str) -> str:
    return f"<!DOCTYPE html><html><head><title>{title}</title></head><body>{body}</body></html>"


def _render(doc: dict, out: str) -> tuple[bytes, str]:
    if out in ("json", "sjson"):
        return json.dumps({"doc": doc}, ensure_ascii=False).encode(), "application/json"
    if out == "text":
        error = doc.get("error")
        return (f"ERROR {error['$type']}({error['$object']})" if error else "OK").encode(), "text/plain"
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + _xml("doc", doc)).encode(), "text/xml"


def _xml(name: str, node) -> str:
    if isinstance(node, list):
        return "".join(_xml(name, item) for item in node)
    if not isinstance(node, dict):
        return f"<{name}>{escape(str(node))}</{name}>"
    attrs = "".join(f" {key[1:]}={quoteattr(str(value))}" for key, value in node.items() if key.startswith("$") and key != "$")
    inner = escape(str(node.get("$", ""))) + "".join(_xml(key, value) for key, value in node.items() if not key.startswith("$"))
    return f"<{name}{attrs}>{inner}</{name}>" if inner else f"<{name}{attrs}/>"


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _Handler(WSGIRequestHandler):
    def get_environ(self):
        environ = super().get_environ()
        connection = self.connection

        def drop():
            # Close without a reply, as a panel that crashed or a proxy that timed out would.
            connection.shutdown(socket.SHUT_RDWR)

        environ["emulator.drop"] = drop
        return environ

    def log_message(self, format, *args):
        pass


def self_signed_certificate(name: str = "127.0.0.1") -> tuple[str, str]:
    """A certificate for `name` signed by itself, as ISPmanager ships one: (certificate, key) in PEM.

    Valid for the address 127.0.0.1 only when `name` is that address (another name makes a CA that signed
    nothing the emulator serves).
    """
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    )
    if name == "127.0.0.1":
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(name))]), critical=False)
    certificate = builder.sign(key, hashes.SHA256())
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return certificate.public_bytes(serialization.Encoding.PEM).decode(), key_pem.decode()


class EmulatorServer:
    """Serves an emulator on 127.0.0.1 in a background thread: `with EmulatorServer(app) as server: server.url`.

    With `tls=True` it speaks https with a self-signed certificate, whose PEM is `certificate`.
    """

    def __init__(self, app: CoreEmulator, port: int = 0, *, tls: bool = False):
        self.app = app
        self._server = make_server("127.0.0.1", port, app, server_class=_Server, handler_class=_Handler)
        self.port = self._server.server_port
        self.certificate = None
        if tls:
            self.certificate, key = self_signed_certificate()
            with tempfile.TemporaryDirectory() as folder:
                files = [Path(folder, "cert.pem"), Path(folder, "key.pem")]
                files[0].write_text(self.certificate)
                files[1].write_text(key)
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                context.load_cert_chain(*files)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}{app.path}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()

    def serve(self) -> None:
        """Serve in the calling thread until Ctrl-C."""
        with contextlib.suppress(KeyboardInterrupt):
            self._server.serve_forever()


def admin_credentials(value: str) -> tuple[str, str]:
    """argparse type of --admin: LOGIN:PASSWORD, both parts non-empty."""
    login, colon, password = value.partition(":")
    if not (login and colon and password):
        raise argparse.ArgumentTypeError(f"expected LOGIN:PASSWORD, got {value!r}")
    return login, password


def renaming(value: str) -> tuple[str, str]:
    """argparse type of --rename: OLD=NEW, both parts non-empty."""
    old, equals, new = value.partition("=")
    if not (old and equals and new):
        raise argparse.ArgumentTypeError(f"expected OLD=NEW (e.g. ip.delete=ip.free), got {value!r}")
    return old, new


def page_size(value: str) -> int:
    if not value.isdigit() or int(value) > 1_000_000:
        raise argparse.ArgumentTypeError(f"expected a number of rows from 0 to 1000000 (0: no paging), got {value!r}")
    return int(value)


def port_number(value: str) -> int:
    if not value.isdigit() or int(value) > 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 0 to 65535 (0: any free port), got {value!r}")
    return int(value)


def panel_options(args: argparse.Namespace) -> dict:
    """The CoreEmulator keywords that serve_forever's common flags give."""
    return {
        "admins": dict(args.admin) or None,
        "roots": dict(args.root) or None,
        "whoami_level": args.whoami_level,
        "page_size": args.page_size,
        "short_pages": args.short_pages,
        "missing_functions": set(args.missing_function),
        "rename": dict(args.rename),
    }


def serve_forever(build, description: str, default_port: int, *, add_arguments=None) -> None:
    """Command line entry of an emulator: `build(args)` makes the app from the parsed arguments (see panel_options).

    `add_arguments(group)` adds the emulator's own flags to the group of how the panel answers.
    Bad flags end with a message, not a traceback.
    """
    parser = argparse.ArgumentParser(
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=CONTROL_HELP.format(url=f"http://127.0.0.1:{default_port}", control=CONTROL_PATH),
    )
    parser.add_argument("--port", type=port_number, default=default_port, help=f"port on 127.0.0.1 (default {default_port})")
    for flag, who in (("--admin", "an administrator, level 29"), ("--root", "a root, level 30")):
        parser.add_argument(flag, type=admin_credentials, action="append", default=[], metavar="LOGIN:PASSWORD", help=f"{who} (repeatable)")
    parser.add_argument("--state", metavar="FILE", help="keep the panel's data in FILE across restarts")
    panel = parser.add_argument_group("how the panel answers (switches for what the API documents leave open)")
    panel.add_argument(
        "--no-whoami-level", dest="whoami_level", action="store_false", help="whoami answers the name only (the level is in func=auth)"
    )
    panel.add_argument("--page-size", type=page_size, default=0, metavar="N", help="lists in pages of N rows, with p_cnt/p_elems/p_num")
    panel.add_argument("--short-pages", action="store_true", help="a paged reply drops its last row, still announcing all in p_elems")
    panel.add_argument(
        "--missing-function",
        action="append",
        default=[],
        metavar="NAME",
        help="the panel lacks this function: missed(func), not in actionlist (repeatable)",
    )
    panel.add_argument(
        "--rename",
        type=renaming,
        action="append",
        default=[],
        metavar="OLD=NEW",
        help="the function OLD answers as NEW only, e.g. ip.delete=ip.free (repeatable)",
    )
    faults = parser.add_argument_group("faults at start (switch them later at the control URL below)")
    faults.add_argument("--down", action="store_true", help="drop every call unanswered, as a panel that is down")
    faults.add_argument("--slow", metavar="SECONDS", help="wait this long before every reply")
    faults.add_argument("--fail-next", metavar="N", help="answer the next N calls with HTTP 503")
    faults.add_argument("--lose-next", metavar="N", help="carry out the next N calls, then lose their replies")
    faults.add_argument("--cut-next", metavar="N", help="stop the next N replies halfway")
    if add_arguments:
        add_arguments(panel)
    args = parser.parse_args()
    app = build(args)
    flags = {"down": "1" if args.down else None, "slow": args.slow, "fail_next": args.fail_next}
    flags |= {"lose_next": args.lose_next, "cut_next": args.cut_next}
    try:
        app.faults.apply({name: value for name, value in flags.items() if value is not None})
    except ValueError as error:
        parser.error(str(error))
    try:
        if args.state:
            app.keep_state_in(args.state)
    except StateFileError as error:
        parser.exit(1, f"{parser.prog}: error: {error}\n")
    try:
        server = EmulatorServer(app, args.port)
    except OSError as error:
        parser.exit(1, f"{parser.prog}: error: cannot listen on 127.0.0.1:{args.port}: {error.strerror or error}\n")
    print(f"{description} on {server.url}", flush=True)
    if args.state:
        print(f"  its data is kept in {args.state} (delete the file to start afresh)", flush=True)
    switched = ", ".join(f"{name}={value}" for name, value in app.faults.summary().items())
    print(f"  faults: {switched}; switch them at http://127.0.0.1:{server.port}{CONTROL_PATH} (see --help)", flush=True)
    server.serve()
