"""A delivery connects to the very address it checked (no second lookup: DNS rebinding), and never through a proxy.

hooks.example is answered by a stand-in resolver (any other name by the real one). Receivers run on loopback
addresses; where the rule against private addresses is on, 127.0.0.1 is made to count as public.
"""

import ipaddress
import socket
import ssl
import threading
from datetime import UTC, datetime, timedelta
from http.server import ThreadingHTTPServer

import pytest
import requests.adapters
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.utils import timezone

from billing.webhooks import addresses
from billing.webhooks.delivery import delivery_attempt, secret_generate
from billing.webhooks.models import EventType, WebhookDelivery, WebhookEndpoint, WebhookEvent
from tests.webhooks.conftest import Receiver

NAME = "hooks.example"
REAL_GETADDRINFO = socket.getaddrinfo


class Server(ThreadingHTTPServer):
    """Counts the connections it accepts, whether a request follows or not."""

    connections = 0

    def get_request(self):
        accepted = super().get_request()
        self.connections += 1
        return accepted


@pytest.fixture
def serve():
    """serve(host, port=0, tls=None) -> (receiver, its server): a Receiver listening there until the test ends."""
    servers = []

    def start(host, port=0, tls=None):
        receiver = Receiver()
        server_class = type("Server6", (Server,), {"address_family": socket.AF_INET6}) if ":" in host else Server
        server = server_class((host, port), receiver.handler())
        if tls:
            server.socket = tls.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return receiver, server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def dns(monkeypatch):
    """Each lookup of hooks.example takes the next answer of `dns.answers` (a list of addresses); the last one stays."""

    class Dns:
        answers = []
        lookups = 0

    def getaddrinfo(host, port, *args, **kwargs):
        if host != NAME:
            return REAL_GETADDRINFO(host, port, *args, **kwargs)
        Dns.lookups += 1
        answer = Dns.answers.pop(0) if len(Dns.answers) > 1 else Dns.answers[0]
        return [info for address in answer for info in REAL_GETADDRINFO(address, port, *args, **kwargs)]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return Dns


@pytest.fixture
def loopback_one_is_public(settings, monkeypatch):
    """The rule against private addresses on, with 127.0.0.1 standing for a public address (so a receiver can be there)."""
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    checked = addresses._refused
    monkeypatch.setattr(addresses, "_refused", lambda address: address != ipaddress.ip_address("127.0.0.1") and checked(address))


def attempt_to(url):
    """One attempt at a delivery of a fresh event to an endpoint at `url`."""
    endpoint = WebhookEndpoint.objects.create(url=url, secret=secret_generate(), event_types=[EventType.SERVICE_RENEWED])
    event = WebhookEvent.objects.create(type=EventType.SERVICE_RENEWED, data={"id": 1})
    delivery = WebhookDelivery.objects.create(event=event, endpoint=endpoint, next_attempt_at=timezone.now())
    return delivery_attempt(delivery_id=delivery.pk)


def test_a_name_is_sent_to_with_its_host_header(serve, db):
    receiver, server = serve("127.0.0.1")
    port = server.server_port

    attempt = attempt_to(f"http://localhost:{port}/hooks")

    assert (attempt.succeeded, attempt.response_status, attempt.error) == (True, 200, "")
    [(path, headers, _body)] = receiver.requests
    assert path == "/hooks"
    assert headers["host"] == f"localhost:{port}"


def test_an_ipv6_address_is_sent_to_in_brackets(serve, dns, db):
    receiver, server = serve("::1")
    port = server.server_port
    dns.answers = [["::1"]]

    assert attempt_to(f"http://[::1]:{port}/a").succeeded
    assert attempt_to(f"http://{NAME}:{port}/b").succeeded

    assert [(path, headers["host"]) for path, headers, _body in receiver.requests] == [("/a", f"[::1]:{port}"), ("/b", f"{NAME}:{port}")]


def test_a_name_resolving_to_a_private_address_is_refused_without_connecting(serve, db, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    _receiver, server = serve("127.0.0.1")

    attempt = attempt_to(f"http://localhost:{server.server_port}/hooks")

    assert not attempt.succeeded
    assert attempt.response_status is None
    assert attempt.error == "localhost is a loopback, private or reserved address (127.0.0.1): webhooks go to public addresses only."
    assert server.connections == 0


def test_one_private_address_among_public_ones_refuses_the_name(serve, dns, loopback_one_is_public, db):
    _receiver, server = serve("127.0.0.1")
    dns.answers = [["127.0.0.1", "10.1.2.3"]]

    attempt = attempt_to(f"http://{NAME}:{server.server_port}/hooks")

    assert attempt.error == "hooks.example is a loopback, private or reserved address (10.1.2.3): webhooks go to public addresses only."
    assert server.connections == 0


def test_a_name_answering_otherwise_after_the_check_is_still_sent_to_the_checked_address(serve, dns, loopback_one_is_public, db):
    checked, checked_server = serve("127.0.0.1")
    port = checked_server.server_port
    _later, later_server = serve("127.0.0.2", port)  # the private address a second lookup would give
    dns.answers = [["127.0.0.1"], ["127.0.0.2"]]

    attempt = attempt_to(f"http://{NAME}:{port}/hooks")

    assert (attempt.succeeded, attempt.error) == (True, "")
    assert dns.lookups == 1
    assert [headers["host"] for _path, headers, _body in checked.requests] == [f"{NAME}:{port}"]
    assert later_server.connections == 0


def test_the_proxy_settings_of_the_environment_are_not_used(serve, monkeypatch, db):
    receiver, server = serve("127.0.0.1")
    _proxy, proxy_server = serve("127.0.0.1")
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.setenv(name, f"http://127.0.0.1:{proxy_server.server_port}")
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)

    attempt = attempt_to(f"http://127.0.0.1:{server.server_port}/hooks")

    assert attempt.succeeded
    assert [path for path, _headers, _body in receiver.requests] == ["/hooks"]
    assert proxy_server.connections == 0


def tls_for(tmp_path, name):
    """A server TLS context with a certificate for `name` from a new CA, that CA's file, and the names the clients asked for (SNI)."""
    now = datetime.now(UTC)

    def certificate(subject, key, issuer, issuer_key, *extensions):
        builder = x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
        builder = builder.serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(hours=1))
        builder = builder.not_valid_after(now + timedelta(hours=1))
        builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        builder = builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
        for extension, critical in extensions:
            builder = builder.add_extension(extension, critical=critical)
        return builder.sign(issuer_key, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Webhook test CA")])
    ca = certificate(
        ca_name, ca_key, ca_name, ca_key,
        (x509.BasicConstraints(ca=True, path_length=None), True),
        (x509.KeyUsage(False, False, False, False, False, True, True, encipher_only=False, decipher_only=False), True),  # cert signing
    )  # fmt: skip
    leaf = certificate(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]), key, ca_name, ca_key,
        (x509.SubjectAlternativeName([x509.DNSName(name)]), False),
        (x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), False),
    )  # fmt: skip
    (tmp_path / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "leaf.pem").write_bytes(
        leaf.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "leaf.pem")
    asked = []
    context.sni_callback = lambda _socket, server_name, _context: asked.append(server_name)
    return context, str(tmp_path / "ca.pem"), asked


def test_https_speaks_tls_with_the_name_not_the_address(serve, dns, monkeypatch, tmp_path, db):
    context, ca, asked = tls_for(tmp_path, NAME)
    monkeypatch.setattr(requests.adapters, "DEFAULT_CA_BUNDLE_PATH", ca)  # the CA the deliveries trust
    receiver, server = serve("127.0.0.1", tls=context)
    dns.answers = [["127.0.0.1"]]

    attempt = attempt_to(f"https://{NAME}:{server.server_port}/hooks")

    assert (attempt.succeeded, attempt.error) == (True, "")
    assert asked == [NAME]
    assert [headers["host"] for _path, headers, _body in receiver.requests] == [f"{NAME}:{server.server_port}"]


def test_https_refuses_a_certificate_for_another_name(serve, dns, monkeypatch, tmp_path, db):
    context, ca, _asked = tls_for(tmp_path, "other.example")
    monkeypatch.setattr(requests.adapters, "DEFAULT_CA_BUNDLE_PATH", ca)
    receiver, server = serve("127.0.0.1", tls=context)
    dns.answers = [["127.0.0.1"]]

    attempt = attempt_to(f"https://{NAME}:{server.server_port}/hooks")

    assert not attempt.succeeded
    assert attempt.error.startswith("SSLError")
    assert "Hostname mismatch, certificate is not valid for 'hooks.example'" in attempt.error
    assert receiver.requests == []
