"""The shop-window's plans are rendered once per language and shown afresh as soon as they change.

In-process tests for what a change does to the page and for the copy kept for first-time visitors,
and one over a real gunicorn with two worker processes, where the change is made by a third
process: what every worker shows must follow.
"""

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
import requests
from django.contrib.messages import constants
from django.contrib.messages.storage.base import Message
from django.contrib.messages.storage.cookie import CookieStorage
from django.db import connection
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext

from billing.choices import BillingPeriod, ProductType, ResourceKind
from billing.models import TariffPrice, TariffResource
from billing.shop_cache import CSRF_PLACEHOLDER
from provisioning.services import module_enable
from tests.factories import ProcessingModuleFactory, TariffPlanFactory, UserFactory

ROOT = Path(__file__).resolve().parent.parent


def text_of(response) -> str:
    assert response.status_code == 200
    return " ".join(re.sub(r"<[^>]+>", " ", response.content.decode()).split())


def queries_of(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


@pytest.fixture
def tariff(db):
    """"Start" at 300.00 a month with 10 databases included, warmed into the cache."""
    tariff = TariffPlanFactory(name="Start", name_ru="Старт", product_type=ProductType.VHOST)
    TariffResource.objects.create(tariff=tariff, kind=ResourceKind.DATABASES, included=10, unit_price=Decimal("20.00"))
    return tariff


@pytest.fixture
def warm(client, tariff):
    """The shop-window, rendered once so that the next page comes from the cache."""
    assert "300.00 RUB monthly" in text_of(client.get("/"))
    return client


def test_a_cached_page_reads_only_the_version_and_the_plans_are_not_read(warm):
    assert queries_of(warm, "/") == 1


def test_a_price_change_is_visible_at_once(warm, tariff):
    price = tariff.prices.get(period=BillingPeriod.MONTH)
    price.price = Decimal("275.50")
    price.save()

    text = text_of(warm.get("/"))

    assert "275.50 RUB monthly" in text
    assert "300.00 RUB" not in text


def test_a_new_and_a_deleted_price_are_visible_at_once(warm, tariff):
    TariffPrice.objects.create(tariff=tariff, period=BillingPeriod.YEAR, price=Decimal("3000.00"))
    assert "3,000.00 RUB yearly" in text_of(warm.get("/"))

    tariff.prices.get(period=BillingPeriod.MONTH).delete()
    text = text_of(warm.get("/"))
    assert "monthly" not in text
    assert "3,000.00 RUB yearly" in text


def test_a_resource_change_is_visible_at_once(warm, tariff):
    resource = tariff.resources.get()
    resource.included = 12
    resource.save()

    assert "Databases: 12" in text_of(warm.get("/"))


@pytest.mark.parametrize("change", [{"is_visible": False}, {"is_enabled": False}], ids=["hidden", "not-for-sale"])
def test_a_tariff_taken_off_sale_disappears_at_once(warm, tariff, change):
    for field, value in change.items():
        setattr(tariff, field, value)
    tariff.save()

    text = text_of(warm.get("/"))

    assert "Start" not in text
    assert "No plans are on sale right now." in text


def test_a_new_tariff_and_a_renamed_one_appear_at_once(warm, tariff):
    TariffPlanFactory(name="Pro", product_type=ProductType.VHOST, ordering=5)
    tariff.name = "Start 2"
    tariff.save()

    text = text_of(warm.get("/"))

    assert "Pro" in text
    assert "Start 2" in text


def test_disabling_and_enabling_a_processing_module_takes_its_plans_off_sale_and_back_at_once(warm, tariff):
    module_enable(module=tariff.processing_module, enabled=False)
    assert "Start" not in text_of(warm.get("/"))

    module_enable(module=tariff.processing_module, enabled=True)
    assert "Start" in text_of(warm.get("/"))
    assert queries_of(warm, "/") == 1


def test_a_change_to_another_modules_record_also_renders_afresh_and_nothing_else_does(warm, tariff):
    ProcessingModuleFactory(name="Another panel")
    assert queries_of(warm, "/") > 1
    UserFactory()  # not something the shop-window shows
    assert queries_of(warm, "/") == 1


def test_each_language_has_its_own_copy(warm, tariff):
    assert "Старт" in text_of(warm.get("/ru/"))
    assert "Старт" not in text_of(warm.get("/"))
    assert queries_of(warm, "/ru/") == 1

    tariff.name_ru = "Старт плюс"
    tariff.save()

    assert "Старт плюс" in text_of(warm.get("/ru/"))


def test_the_header_is_each_visitors_own_only_the_plans_are_shared(warm, tariff):
    user = UserFactory(username="anna@example.com")
    warm.force_login(user)

    logged_in = warm.get("/").content.decode()
    assert "Log out" in logged_in
    assert "Start" in logged_in

    warm.logout()
    anonymous = warm.get("/").content.decode()
    assert "Log out" not in anonymous
    assert "Sign up" in anonymous


# A visitor without cookies or a query string is shown the page kept for everyone, with its own CSRF token.


def csrf_token_in(page: str) -> str:
    (token,) = set(re.findall(r'name="csrfmiddlewaretoken" value="([^"]+)"', page))
    return token


def test_a_first_visit_is_served_whole_from_the_cache_with_a_csrf_token_that_works(db, tariff):
    first, second = Client(enforce_csrf_checks=True), Client(enforce_csrf_checks=True)
    first.get("/")

    assert queries_of(second, "/") == 1  # a new visitor: the page kept for everyone
    page = second.get("/").content.decode()
    assert "Start" in page
    assert CSRF_PLACEHOLDER not in page

    switched = second.post("/i18n/setlang/", {"language": "ru", "next": "/", "csrfmiddlewaretoken": csrf_token_in(page)})
    assert switched.status_code == 302
    assert switched["Location"] == "/ru/"


def test_each_visitor_gets_a_token_of_its_own_csrf_cookie(db, tariff):
    anna, boris = Client(enforce_csrf_checks=True), Client(enforce_csrf_checks=True)
    anna_page, boris_page = anna.get("/").content.decode(), boris.get("/").content.decode()

    assert anna.cookies["csrftoken"].value != boris.cookies["csrftoken"].value
    refused = boris.post("/i18n/setlang/", {"language": "ru", "next": "/", "csrfmiddlewaretoken": csrf_token_in(anna_page)})
    assert refused.status_code == 403
    accepted = boris.post("/i18n/setlang/", {"language": "ru", "next": "/", "csrfmiddlewaretoken": csrf_token_in(boris_page)})
    assert accepted.status_code == 302


def test_a_query_string_is_repeated_in_the_page_not_taken_from_the_kept_copy(warm, tariff):
    page = warm.get("/?from=newsletter").content.decode()

    assert 'name="next" type="hidden" value="/?from=newsletter"' in page
    assert "Start" in page


def test_a_message_waiting_in_a_cookie_is_shown(warm, tariff):
    warm.cookies[CookieStorage.cookie_name] = CookieStorage(RequestFactory().get("/"))._encode([Message(constants.INFO, "See you soon")])

    assert "See you soon" in warm.get("/").content.decode()
    assert "See you soon" not in warm.get("/").content.decode()  # shown once


def test_a_version_kept_outside_the_database_changes_again_after_the_commit(settings, warm, tariff, django_capture_on_commit_callbacks):
    # As with Redis: the version does not roll back with the data, so it changes again once the data is committed.
    settings.CACHES = settings.CACHES | {"shared": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "shared"}}
    from billing.shop_cache import shop_window_key

    before = shop_window_key()
    with django_capture_on_commit_callbacks(execute=True):
        tariff.save()
        during = shop_window_key()
    after = shop_window_key()

    assert len({before, during, after}) == 3


# Over a real gunicorn: two worker processes, each with its own memory, and a change made by a third process.


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def site(tmp_path):
    """gunicorn with 2 workers on a SQLite file with the demo's data; yields (url, env for manage.py)."""
    env = {key: value for key, value in os.environ.items() if key not in {"DEBUG", "DJANGO_SETTINGS_MODULE"}}
    env |= {
        "DJANGO_SETTINGS_MODULE": "billing.settings",
        "ENV_FILE": os.devnull,
        "DATABASE_URL": f"sqlite:///{tmp_path}/site.sqlite3",
        "DEBUG": "1",  # static files without collectstatic; the cache works the same
        "LOG_LEVEL": "WARNING",
    }

    def manage(*args):
        return subprocess.run(  # noqa: S603 - our own manage.py
            [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=True
        )

    manage("migrate", "--noinput")
    manage("load_demo")
    port = _free_port()
    gunicorn = ["gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}", "--chdir", str(ROOT), "--no-control-socket", "billing.wsgi"]
    server = subprocess.Popen(  # noqa: S603 - gunicorn from our own venv
        [sys.executable, "-m", *gunicorn], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(url, timeout=10)
                break
            except requests.RequestException:
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.2)
        yield url, manage
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


def _pages(url: str, count: int) -> list[str]:
    return [" ".join(re.sub(r"<[^>]+>", " ", requests.get(url, timeout=10).text).split()) for _ in range(count)]


def test_every_worker_shows_a_price_changed_by_another_process_at_once(site):
    url, manage = site
    pages = _pages(url, 20)  # both workers have rendered and cached the plans
    assert all("300.00 RUB monthly" in page for page in pages)

    new_price = f"{secrets.randbelow(900) + 100}.25"
    manage(
        "shell", "-c",
        f"from billing.models import TariffPrice; p = TariffPrice.objects.get(tariff__name_en='Site hosting', period=1); "
        f"p.price = '{new_price}'; p.save()",
    )  # fmt: skip

    pages = _pages(url, 20)
    assert all(f"{new_price} RUB monthly" in page for page in pages)
    assert not any("300.00 RUB" in page for page in pages)
