import io
import threading
from urllib.parse import parse_qs

import pytest

from billing.choices import ProductType, ResourceKind
from tests.factories import ClientFactory, ProcessingModuleFactory, ServiceFactory, TariffPlanFactory, TariffResourceFactory, UserFactory


@pytest.fixture
def panel(ispmanager):
    """The emulator with the seed's template: "Site hosting" allows 25 databases and 25 web domains."""
    ispmanager.app.add_preset("Site hosting", limit_db=25, limit_webdomains=25)
    return ispmanager


@pytest.fixture
def module(panel, transactional_db):
    return ProcessingModuleFactory(url=panel.url, username="root", password="secret", product_type=ProductType.VHOST)


@pytest.fixture
def tariff(module):
    """The seed's tariff: template "Site hosting", a "Databases" resource with 10 included, no domain resource."""
    tariff = TariffPlanFactory(processing_module=module, product_type=ProductType.VHOST, account_template="Site hosting")
    TariffResourceFactory(tariff=tariff, kind=ResourceKind.DATABASES, included=10)
    return tariff


@pytest.fixture
def make_service(tariff):
    def make(**fields):
        client = fields.pop("client", None) or ClientFactory()
        user = UserFactory()
        client.users.add(user)
        return ServiceFactory(client=client, tariff=fields.pop("tariff", tariff), ordered_by=user, **fields)

    return make


def _func_of(environ) -> tuple[str, bytes]:
    """The `func` of a panel request, leaving its body readable for the emulator behind."""
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    environ["wsgi.input"] = io.BytesIO(body)
    return parse_qs(body.decode()).get("func", [""])[0], body


class HeldReply:
    """Serve an emulator (in an EmulatorServer) whose first `func` call is done at once but answered late.

    `acted` is set once the panel has done the work; the reply leaves when the test sets `release`:
    a slow panel call, with the test deciding what happens meanwhile.
    """

    def __init__(self, app, func: str):
        self.app, self.func, self.path = app, func, app.path
        self.acted, self.release = threading.Event(), threading.Event()
        self._armed = True

    def __call__(self, environ, start_response):
        func, _body = _func_of(environ)
        reply = self.app(environ, start_response)
        if self._armed and func == self.func:
            self._armed = False
            self.acted.set()
            self.release.wait(timeout=30)
        return reply


class CallWatcher:
    """Serve an emulator and run `see(func)` as each call arrives, before the panel handles it."""

    def __init__(self, app, see):
        self.app, self.see, self.path = app, see, app.path

    def __call__(self, environ, start_response):
        func, _body = _func_of(environ)
        self.see(func)
        return self.app(environ, start_response)


class OtherSite:
    """Not a panel: a web site that answers every request with one HTTP status and an HTML page."""

    path = "/ispmgr"

    def __init__(self, status: str):
        self.status = status

    def __call__(self, environ, start_response):
        body = b"<html><body>Forbidden</body></html>"
        start_response(self.status, [("Content-Type", "text/html"), ("Content-Length", str(len(body)))])
        return [body]
