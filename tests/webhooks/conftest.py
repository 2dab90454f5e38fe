import threading
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import time_machine
from django.db import connection

from billing.choices import LedgerEntryKind, ServiceStatus
from billing.services import ledger_entry_add
from billing.webhooks.delivery import secret_generate
from billing.webhooks.models import WebhookEndpoint
from tests.factories import ServiceFactory

START = datetime(2026, 2, 20, 9, 0, tzinfo=UTC)


class Receiver:
    """A webhook receiver on 127.0.0.1: records every request and answers with the statuses given, then 200."""

    def __init__(self):
        self.requests = []  # (path, headers with lower-case names, body bytes)
        self.answers = []
        self.url = ""
        self.during_first = None  # called while the first request waits for its answer

    def handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.requests.append((self.path, {name.lower(): value for name, value in self.headers.items()}, body))
                status = receiver.answers.pop(0) if receiver.answers else 200
                if receiver.during_first:
                    during, receiver.during_first = receiver.during_first, None
                    try:
                        during()
                    finally:
                        connection.close()
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", receiver.url + "/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST

            def log_message(self, *args):
                pass

        return Handler


@pytest.fixture
def receiver():
    receiver = Receiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), receiver.handler())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    receiver.url = f"http://127.0.0.1:{server.server_port}/hooks"
    yield receiver
    server.shutdown()
    server.server_close()


@pytest.fixture
def clock(settings):
    settings.TIME_ZONE = "UTC"
    with time_machine.travel(START, tick=True) as traveller:
        yield traveller


@pytest.fixture
def endpoint(receiver, transactional_db):
    """Subscribed to every event type."""
    from billing.webhooks.models import EventType

    return WebhookEndpoint.objects.create(url=receiver.url, secret=secret_generate(), event_types=list(EventType.values))


def subscribe(url, *types, **fields):
    return WebhookEndpoint.objects.create(url=url, secret=secret_generate(), event_types=list(types), **fields)


def active_service(balance="25.00"):
    """10.00 a month, paid until 2026-02-28 10:00, with `balance` on the client's account."""
    service = ServiceFactory(
        price=Decimal("10.00"),
        status=ServiceStatus.ACTIVE,
        period_anchor=datetime(2026, 1, 31, 10, tzinfo=UTC),
        expires_at=datetime(2026, 2, 28, 10, tzinfo=UTC),
    )
    if Decimal(balance):
        ledger_entry_add(client=service.client, kind=LedgerEntryKind.TOPUP, amount=Decimal(balance))
    return service
