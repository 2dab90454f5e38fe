"""Browser tests: Debian's Chromium, driven by Playwright, against pytest-django's live server.

Chromium comes from the system (`apt-get install chromium`), never from `playwright install`.
Without /usr/bin/chromium every test of this directory is skipped with the reason.
"""

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.test import Client as DjangoClient

from billing.choices import BillingPeriod, ProductType, ResourceKind
from billing.models import TariffPlan, TariffPrice
from tests.factories import DataCenterFactory, ProcessingModuleFactory, TariffPlanFactory, TariffResourceFactory

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP = {"width": 1280, "height": 800}


@pytest.fixture(scope="package")
def pw():
    """Playwright, for the tests of this directory only.

    Its sync API keeps an asyncio loop running in the test thread, which makes Django refuse ORM
    calls from that thread (SynchronousOnlyOperation). Nothing here is async: the check is switched
    off while the browser tests run and back on afterwards.
    """
    if not CHROMIUM.exists():
        pytest.skip(f"Chromium not installed: apt-get install chromium ({CHROMIUM} is missing)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_api.sync_playwright() as playwright:
            yield playwright


@pytest.fixture(scope="package")
def browser(pw):
    browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS, headless=True)
    yield browser
    browser.close()


@pytest.fixture
def new_page(browser, live_server):
    """Open pages in fresh contexts (own cookies): `new_page(viewport=...)`."""
    contexts = []

    def make(**options):
        options = {"viewport": DESKTOP, "locale": "en-US", "base_url": live_server.url, **options}
        context = browser.new_context(**options)
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page):
    """A desktop page (1280 wide, English) on the live server."""
    return new_page()


@pytest.fixture
def log_in_as(live_server):
    """Give a page the session of a client's user, without going through the login form."""

    def log_in(page, client):
        django_client = DjangoClient()
        django_client.force_login(client.users.get(), backend="django.contrib.auth.backends.ModelBackend")
        session = django_client.cookies[django_settings.SESSION_COOKIE_NAME].value
        page.context.add_cookies([{"name": django_settings.SESSION_COOKIE_NAME, "value": session, "url": live_server.url}])

    return log_in


@pytest.fixture(autouse=True)
def browser_settings(settings):
    """Paying runs the ISPmanager operation right after commit; the test gateway pays at once."""
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
    settings.PAYMENT_GATEWAYS = ["manual", "test"]


@pytest.fixture
def panel(ispmanager):
    """The ISPmanager emulator with the "Site hosting" template."""
    ispmanager.app.add_preset("Site hosting", limit_db=25, limit_webdomains=25)
    return ispmanager


@dataclass
class Catalog:
    hosting: TariffPlan
    storage: TariffPlan


@pytest.fixture
def catalog(panel, live_server):
    """What the shop-window sells: the two tariffs of the demo, both on the emulator."""
    data_center = DataCenterFactory(name="Moscow")
    modules = {
        product_type: ProcessingModuleFactory(
            product_type=product_type, url=panel.url, username="root", password="secret", data_center=data_center
        )
        for product_type in (ProductType.VHOST, ProductType.STORAGE)
    }
    hosting = TariffPlanFactory(
        name="Site hosting",
        name_en="Site hosting",
        name_ru="Хостинг сайтов",
        product_type=ProductType.VHOST,
        processing_module=modules[ProductType.VHOST],
        account_template="Site hosting",
        username_template="user@ID@",
        monthly_price=Decimal("300.00"),
    )
    TariffPrice.objects.create(tariff=hosting, period=BillingPeriod.YEAR, price=Decimal("3000.00"))
    TariffResourceFactory(tariff=hosting, kind=ResourceKind.DATABASES, included=10, unit_price=Decimal("20.00"), max_quantity=50)
    storage = TariffPlanFactory(
        name="FTP storage 10 GB",
        name_en="FTP storage 10 GB",
        name_ru="FTP-хранилище 10 ГБ",
        product_type=ProductType.STORAGE,
        processing_module=modules[ProductType.STORAGE],
        account_template="FTP storage",
        username_template="user@ID@",
        monthly_price=Decimal("150.00"),
        setup_fee=Decimal("100.00"),
    )
    TariffResourceFactory(tariff=storage, kind=ResourceKind.FTP_USERS, included=3, unit_price=Decimal("10.00"), max_quantity=20)
    return Catalog(hosting=hosting, storage=storage)
