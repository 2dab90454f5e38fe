"""The shared core of the panel emulators: COREmanager transport, replies and fault injection.

A subclass declares its functions; this module parses requests (GET query or POST form),
authenticates (`authinfo`, `auth` sessions, `func=auth`), answers in `out=json|xml|text`, and
misbehaves on demand: down, slow, failing the next N calls, or acting and then dropping the reply.
"""

import argparse
import contextlib
import json
import secrets
import socket
import ssl
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from socketserver import ThreadingMixIn
from urllib.parse import parse_qsl
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from xml.sax.saxutils import escape, quoteattr

from provisioning.coremanager.client import SECRET_PARAMS

SESSION_IDLE_SECONDS = 3600


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


class CoreEmulator:
    """A WSGI app speaking COREmanager. Subclasses fill `functions`, `accounts` and `path`."""

    path = "/"
    # Functions anyone may call without credentials.
    public_functions = frozenset({"auth"})

    def __init__(self):
        self.faults = Faults()
        self.lock = threading.RLock()
        self.calls: list[tuple[str, dict]] = []  # every authenticated call, secrets removed
        self.accounts: dict[str, tuple[str, int]] = {}  # API logins: name -> (password, level)
        self.sessions: dict[str, tuple[str, str, float]] = {}  # id -> (login, client address, last use)
        self.login_keys: dict[str, str] = {}  # one-time keys of session.newkey -> login

    @property
    def functions(self) -> dict:
        raise NotImplementedError

    def authenticate(self, name: str, password: str) -> Caller | None:
        """The caller these credentials belong to, or None."""
        account = self.accounts.get(name)
        if account and secrets.compare_digest(account[0], password):
            return Caller(name, account[1])
        return None

    # WSGI

    def __call__(self, environ, start_response):
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
        if self.faults.take_drop(func):
            return _drop(environ, start_response)
        body, content_type = _render(doc, out)
        start_response("200 OK", [("Content-Type", content_type), ("Content-Length", str(len(body)))])
        if self.faults.take_cut(func):
            return _half_then_drop(environ, body)
        return [body]

    def _dispatch(self, func: str, params: dict, address: str) -> dict:
        if func == "auth":
            return self._auth(params, address)
        caller = self._caller(params, address)
        handler = self.functions.get(func)
        if handler is None:
            raise PanelFault("missed", "func", f"Function '{func}' not found")
        self.calls.append((func, {key: value for key, value in params.items() if key not in SECRET_PARAMS | {"auth"}}))
        return handler(caller, params)

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


def _html(start_response, status: str, body: str):
    data = body.encode()
    start_response(status, [("Content-Type", "text/html"), ("Content-Length", str(len(data)))])
    return [data]


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


def self_signed_certificate() -> tuple[str, str]:
    """A certificate for 127.0.0.1 signed by itself, as ISPmanager ships one: (certificate, key) in PEM."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
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


def serve_forever(build, description: str, default_port: int) -> None:
    """Command line entry of an emulator: `build(args)` makes the app from the parsed arguments."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, default=default_port)
    parser.add_argument("--edition", default="business")
    parser.add_argument("--admin", action="append", default=[], help="LOGIN:PASSWORD of an administrator (repeatable)")
    args = parser.parse_args()
    server = EmulatorServer(build(args), args.port)
    print(f"{description} on {server.url}", flush=True)
    server.serve()
