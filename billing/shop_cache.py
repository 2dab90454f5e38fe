"""The shop-window: rendered once per language and kept until something it shows changes.

Every visitor sees the same plans (only the page header knows who is logged in), so
templates/shop/index.html caches that part in each web worker's own memory (the `default` cache)
under `shop_window_key()`: the language and a version token. A visitor without cookies or a query
string (no session, so no login and no messages: most first visits) is shown the whole page from
that memory, only its CSRF token filled in. The token is kept in the `shared` cache, a database
table unless SHARED_CACHE_URL says otherwise, which every worker on every host reads: one query per
page, instead of three queries and the rendering. Saving or deleting a tariff plan, one of its
prices or resources, or a processing module (its "enabled" switch takes its plans off sale) gives
the token a new value, so the next page anywhere shows the change.
"""

import secrets

from django.conf import settings
from django.contrib.messages.storage.cookie import CookieStorage
from django.core.cache import cache, caches
from django.core.management import call_command
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.http import HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils.translation import get_language

from billing.choices import ProductType
from billing.selectors import shop_tariffs

VERSION_KEY = "shop-window-version"
# Stands for the visitor's CSRF token in a page kept for everyone (letters only: HTML-escaping keeps it).
CSRF_PLACEHOLDER = "shopWindowCsrfTokenPlaceholder"


def shop_window_key() -> str:
    """What the rendered plans are cached under: the active language and the current version."""
    version = caches["shared"].get_or_set(VERSION_KEY, _new_token, timeout=None)
    return f"{get_language()}:{version}"


def shop_page(request, template_name: str, context: dict) -> HttpResponse:
    """The shop-window page; for a visitor like any other (see _is_anyone), the copy kept for everyone."""
    if not _is_anyone(request):
        return render(request, template_name, context)
    key = f"shop-window-page:{context['shop_window_key']}"
    page = cache.get(key)
    if page is None:
        page = render_to_string(template_name, context | {"csrf_token": CSRF_PLACEHOLDER}, request)
        cache.set(key, page, timeout=None)
    return HttpResponse(page.replace(CSRF_PLACEHOLDER, get_token(request)))


def _is_anyone(request) -> bool:
    # No session cookie: not logged in and no messages kept in a session; no messages cookie; no query
    # string, which the page repeats (the language switch's `next`). The CSRF cookie may be there.
    cookies = request.COOKIES
    return not (cookies.get(settings.SESSION_COOKIE_NAME) or cookies.get(CookieStorage.cookie_name) or request.GET)


def shop_sections() -> list[tuple[str, list]]:
    """The plans on sale grouped by product type, in the order of ProductType; empty groups left out."""
    tariffs = list(shop_tariffs())
    sections = [(label, [tariff for tariff in tariffs if tariff.product_type == value]) for value, label in ProductType.choices]
    return [(label, items) for label, items in sections if items]


def shop_window_changed(**kwargs) -> None:
    """Receiver of saves and deletes of what the shop-window shows."""
    # Now: a token in the database changes in the same transaction as the data, so no worker can
    # pair the new token with the old data (and a test sees the change before its transaction ends).
    # Again after the commit: a token kept outside the database (Redis) changed before the commit
    # may have been paired with the old data by a worker in between.
    _version_change()
    transaction.on_commit(_version_change, robust=True)


def shop_window_watch() -> None:
    """Connect shop_window_changed to the models the shop-window shows (BillingConfig.ready)."""
    from billing.models import TariffPlan, TariffPrice, TariffResource
    from provisioning.models import ProcessingModule

    for model in (TariffPlan, TariffPrice, TariffResource, ProcessingModule):
        for signal in (post_save, post_delete):
            signal.connect(shop_window_changed, sender=model)


def shared_cache_table_create(using: str = "default", **kwargs) -> None:
    """post_migrate receiver: the shared cache's table (when it is the database) comes with `migrate`."""
    call_command("createcachetable", database=using, verbosity=0)


def _new_token() -> str:
    return secrets.token_hex(8)


def _version_change() -> None:
    caches["shared"].set(VERSION_KEY, _new_token(), timeout=None)
