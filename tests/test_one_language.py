"""One language per reader: the Russian client area and admin have no English left, the English ones no Russian.

The pages are rendered from data made the way the product makes it, much of it written while the other
language was active (a Russian client's ledger written from an English request, and the reverse), so
that a text stored in its writer's language shows up here. A page fails when it shows, in English, a
message of the project: a msgid of locale/ru/LC_MESSAGES/django.po or one marked in the current source
(Python and templates), of two words or more. The report names each page and each such message, and
says whether the Russian catalog lacks it (translate it, then compilemessages) or has it and the page
still shows English (the text was fixed in one language before it reached the page).
"""

import ast
import re
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from functools import cache
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib import admin
from django.test import Client as Browser
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation.template import templatize

from billing.choices import BillingPeriod, LedgerEntryKind, PanelAction, ResourceKind
from billing.cycle import billing_run
from billing.cycle_rules import local_date, today
from billing.models import BillingRun, Notification, Service
from billing.notifications import notification_send
from billing.payments import payment_confirm, payment_start
from billing.services import (
    client_register,
    ledger_entry_add,
    order_place,
    service_action_request,
    service_auto_renew_set,
    service_client_renew,
    service_expiry_set,
    service_pay,
)
from ipam_sync.ipmanager.probe import integration_probe
from ipam_sync.models import IPmanagerIntegration
from ipam_sync.services import integration_check_connection, note_for
from ipam_sync.sync import sync_ips_run
from provisioning.accounts_sync import sync_accounts_run
from provisioning.ispmanager.probe import module_probe
from provisioning.models import Operation
from provisioning.panel_login import service_panel_login_url
from provisioning.services import module_check_connection, operation_run
from tests.factories import IPAssignmentFactory, ProcessingModuleFactory, TariffPlanFactory, TariffResourceFactory
from tests.test_translations import PO_FILE, po_entries

ROOT = Path(settings.BASE_DIR)
SOURCE_DIRS = ["billing", "provisioning", "ipam_sync"]
TEMPLATE_DIRS = [ROOT / "templates", *(ROOT / app / "templates" for app in SOURCE_DIRS)]
GETTEXT_CALLS = {
    # name: (index of the msgid, index of the plural or None), context first for the p* forms
    "_": (0, None),
    "gettext": (0, None),
    "gettext_lazy": (0, None),
    "gettext_noop": (0, None),
    "ngettext": (0, 1),
    "ngettext_lazy": (0, 1),
    "pgettext": (1, None),
    "pgettext_lazy": (1, None),
    "npgettext": (1, 2),
    "npgettext_lazy": (1, 2),
}
PLACEHOLDER = re.compile(r"%\(\w+\)[sdif]|%[sdif]")
WORD = re.compile(r"[A-Za-z]+(?:['\u2019][A-Za-z]+)?")
CYRILLIC = re.compile(r"[\u0400-\u04ff]+(?:[\s,.:;-]+[\u0400-\u04ff]+)*")
PASSWORD = "a-long-client-password-42"
# What clients and staff typed or named in Russian: shown as it is in every language.
RUSSIAN_DATA = ["Старт", "Сайты на PHP"]
OBSOLETE = "django.po only, no longer in the source"


# The project's messages.


def _python_msgids(path: Path) -> dict[str, str]:
    found = {}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
        if name not in GETTEXT_CALLS:
            continue
        for index in GETTEXT_CALLS[name]:
            if index is not None and index < len(node.args):
                argument = node.args[index]
                if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                    found.setdefault(argument.value, f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


_LITERAL = r"u?(?:'(?:[^'\\\n]|\\.)*'|\"(?:[^\"\\\n]|\\.)*\")"
_TEMPLATE_CALL = re.compile(rf"\b(n?p?gettext)\(((?:{_LITERAL}, )*{_LITERAL})")


def _template_msgids(path: Path) -> dict[str, str]:
    found = {}
    for match in _TEMPLATE_CALL.finditer(templatize(path.read_text(encoding="utf-8"), origin=str(path))):
        literals = [ast.literal_eval(literal) for literal in re.findall(_LITERAL, match[2])]
        if match[1].startswith("np") or match[1].startswith("p"):
            literals = literals[1:]  # the context
        for literal in literals:
            found.setdefault(literal, str(path.relative_to(ROOT)))
    return found


@cache
def catalog() -> dict[str, str]:
    """msgid → its Russian translation ("" when missing or fuzzy), plural forms under both English forms."""
    translations = {}
    for msgid, plural, forms, flags in po_entries(PO_FILE):
        translated = "" if "fuzzy" in flags or not all(form.strip() for form in forms) else forms[0]
        for english in filter(None, [msgid.split("\x04")[-1], plural]):
            translations[english] = translated
    return translations


@cache
def project_msgids() -> dict[str, str]:
    """Every message of the project worth looking for: msgid → where the source has it, or OBSOLETE (only django.po has it)."""
    found = {}
    for directory in SOURCE_DIRS:
        for path in sorted((ROOT / directory).rglob("*.py")):
            if "migrations" not in path.parts:
                found.update({msgid: where for msgid, where in _python_msgids(path).items() if msgid not in found})
    for directory in TEMPLATE_DIRS:
        for path in sorted(directory.rglob("*.html")) if directory.exists() else []:
            found.update({msgid: where for msgid, where in _template_msgids(path).items() if msgid not in found})
    found.update({msgid: OBSOLETE for msgid in catalog() if msgid not in found})
    return {
        msgid: where
        for msgid, where in found.items()
        if len(WORD.findall(PLACEHOLDER.sub(" ", msgid))) >= 2 and catalog().get(msgid) != msgid  # a name that stays a name
    }


def _pattern(msgid: str) -> re.Pattern:
    """The message as a page shows it: its placeholders filled with anything short, its spaces any spacing."""
    literal = re.sub(r"<[^>]+>", " ", msgid)
    parts = [re.sub(r"\\\s+|\s+", r"\\s+", re.escape(part.strip())) for part in PLACEHOLDER.split(literal)]
    parts = [part for part in parts if part]
    pattern = ".{0,160}?".join(parts)
    if re.match(r"\w", literal.strip()):
        pattern = r"(?<!\w)" + pattern
    if re.search(r"\w$", literal.strip()):
        pattern += r"(?!\w)"
    return re.compile(pattern, re.IGNORECASE)


@cache
def patterns() -> list[tuple[str, str, re.Pattern]]:
    """(msgid, its longest literal part in lower case for a quick look first, pattern)."""
    result = []
    for msgid in project_msgids():
        longest = max((part.strip() for part in PLACEHOLDER.split(re.sub(r"<[^>]+>", " ", msgid))), key=len)
        result.append((msgid, " ".join(longest.lower().split()), _pattern(msgid)))
    return result


# What a page says.


class PageText(HTMLParser):
    """The words a reader meets: text, titles, labels, placeholders and button values; not scripts or typed-in data."""

    SKIP = {"script", "style", "textarea", "template"}
    ATTRIBUTES = {"title", "placeholder", "aria-label", "alt"}

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.chunks, self.skipping = [], 0
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self.skipping += 1
        attrs = dict(attrs)
        self.chunks += [value for name, value in attrs.items() if name in self.ATTRIBUTES and value]
        if tag == "input" and attrs.get("type") in ("submit", "button", "reset") and attrs.get("value"):
            self.chunks.append(attrs["value"])

    def handle_endtag(self, tag):
        if tag in self.SKIP and self.skipping:
            self.skipping -= 1

    def handle_data(self, data):
        if not self.skipping:
            self.chunks.append(data)

    @property
    def text(self) -> str:
        return " ".join(" ".join(self.chunks).split())


def english_left(text: str) -> list[tuple[str, str]]:
    """(msgid, what the page shows) for each message of the project the text shows untranslated.

    A message met only inside a longer one ("Your password" in "Enter your password to see it") is the longer one's.
    """
    lowered = text.lower()
    matches = []
    for msgid, longest, pattern in patterns():
        if longest in lowered:
            matches += [(match.span(), msgid, match[0]) for match in pattern.finditer(text)]
    spans = {span for span, _, _ in matches}
    current = {span for span, msgid, _ in matches if project_msgids()[msgid] != OBSOLETE}
    untranslated = {span for span, msgid, _ in matches if not catalog().get(msgid)}
    found = {}
    for span, msgid, shown in matches:
        inside_another = any(a <= span[0] and span[1] <= b and (a, b) != span for a, b in spans)
        # The same words may be several msgids: an old one of the catalog and its successor in the source, a
        # label and a sentence starting with it. The one the catalog lacks explains the English; name it.
        superseded = (project_msgids()[msgid] == OBSOLETE and span in current) or (catalog().get(msgid) and span in untranslated)
        if not inside_another and not superseded:
            found.setdefault(msgid.lower(), (msgid, shown))
    return list(found.values())


def russian_left(text: str) -> list[tuple[str, str]]:
    """(Russian words, the text around them) outside what was typed in Russian."""
    for data in RUSSIAN_DATA:
        text = text.replace(data, " ")
    return [(match[0], text[max(0, match.start() - 30) : match.end() + 30]) for match in CYRILLIC.finditer(text)]


# The data, made the way the product makes it.


@dataclass
class Reader:
    """A client whose every text was written while the other language was active."""

    user: object
    services: list[Service] = field(default_factory=list)
    payment_id: int = 0
    # Paid until yesterday, and 5 days ago (the daily run suspends it for non-payment), auto-renew off.
    overdue: Service | None = None
    unpaid: Service | None = None


def _run_operations(service: Service) -> None:
    for operation in Operation.objects.filter(service=service, status="queued"):
        operation_run(operation_id=operation.pk)


def _client_with_history(language: str, tariffs, staff_user, integration) -> Reader:
    """A client with a top-up, an adjustment, a service in each status and each billing-cycle state, written in the other language."""
    client = client_register(email=f"{language}@example.com", name=f"Client {language}", password=PASSWORD, language=language)
    user = client.users.get()
    with translation.override("en" if language == "ru" else "ru"):
        payment, _ = payment_start(client=client, gateway_code="manual", amount="4500.60", by=user)
        payment_confirm(payment=payment, by=staff_user)
        ledger_entry_add(client=client, kind=LedgerEntryKind.ADJUSTMENT, amount=Decimal("-0.60"), created_by=staff_user)
        place = {"client": client, "user": user, "period": BillingPeriod.MONTH, "resources": {"databases": 12}}
        active, suspended, failed, cancelled, ordered = (
            order_place(tariff=tariffs[name == "failed"], domain=f"{name}-{language}.example.com", **place)
            for name in ("active", "suspended", "failed", "cancelled", "ordered")
        )
        for service in (active, suspended, failed):
            service_pay(service=service, by=user)
            _run_operations(service)
        service_action_request(service=suspended, action=PanelAction.SUSPEND, by=user)
        _run_operations(suspended)
        service_action_request(service=cancelled, action=PanelAction.CLOSE, by=user)
        pending, _ = payment_start(client=client, gateway_code="manual", amount="500.00", by=user)
        IPAssignmentFactory(service=active, integration=integration)
        active.refresh_from_db()
        active = service_client_renew(service=active, periods=1, expected_expiry=active.expires_at, user=user)
        # Auto-renew off, paid until yesterday (overdue), 5 days ago (suspended by the run) and in 3 days (a notice).
        more, _ = payment_start(client=client, gateway_code="manual", amount="5000.00", by=user)
        payment_confirm(payment=more, by=staff_user)
        cycle = {}
        for name, days in (("overdue", -1), ("unpaid", -5), ("expiring", 3)):
            service = order_place(tariff=tariffs[0], domain=f"{name}-{language}.example.com", **place)
            service_pay(service=service, by=user)
            _run_operations(service)
            service_auto_renew_set(service=service, enabled=False, by=user)
            moved = timezone.now() + timedelta(days=days)
            cycle[name] = service_expiry_set(service=service, expires_at=moved, reason="INC-4711", by=staff_user)
    services = [active, suspended, failed, cancelled, *cycle.values(), ordered]  # the last one is the unpaid order
    return Reader(user=user, services=services, payment_id=pending.pk, overdue=cycle["overdue"], unpaid=cycle["unpaid"])


def _billing_cycle_runs(readers: dict[str, Reader]) -> None:
    """Today's run (a notice, suspensions for non-payment, the notices sent) and a dry run of the renewal to come."""
    billing_run(day=today())
    for reader in readers.values():
        _run_operations(reader.unpaid)
    for notification in Notification.objects.order_by("pk")[:4]:
        notification_send(notification_id=notification.pk)
    renewal = min(local_date(reader.services[0].expires_at) for reader in readers.values())
    billing_run(day=renewal - timedelta(days=3), dry_run=True)


@pytest.fixture
def world(db, staff_user, ispmanager, ipmanager, settings) -> dict[str, Reader]:
    """The Russian and the English reader; around them, checked panels and sync runs, written in both languages."""
    settings.PAYMENT_GATEWAYS = ["manual", "test"]
    ispmanager.app.add_preset("Site hosting", limit_db=25, limit_webdomains=25)
    integration = IPmanagerIntegration.objects.create(
        name="IPmanager", url=ipmanager.url, username="billing", password="secret", admin_username="admin", admin_password="secret"
    )
    module = ProcessingModuleFactory(url=ispmanager.url, username="root", password="secret", ipmanager=integration)
    module.department = staff_user.groups.create(name="Support")
    module.save()
    broken = ProcessingModuleFactory(name="Panel B", url=ispmanager.url, username="root", password="wrong")
    tariffs = [
        TariffPlanFactory(
            name_en="Start",
            name_ru="Старт",
            description_en="PHP sites",
            description_ru="Сайты на PHP",
            processing_module=panel_module,
            account_template="Site hosting",
            setup_fee=Decimal("1000.00"),
        )
        for panel_module in (module, broken)
    ]
    for tariff in tariffs:
        TariffResourceFactory(tariff=tariff, kind=ResourceKind.DATABASES, included=10, unit_price=Decimal("20.00"), max_quantity=50)
    readers = {language: _client_with_history(language, tariffs, staff_user, integration) for language in ("ru", "en")}
    _billing_cycle_runs(readers)
    ipmanager.app.take("133.31.223.5", owner="billing", note=note_for(999))
    ipmanager.app.take("133.31.223.7", owner="billing", note="manual")
    with translation.override("ru"):
        integration_check_connection(integration=integration)
        module_check_connection(module=broken)
        sync_ips_run(integration=integration, dry_run=True, max_release=50)
        sync_ips_run(integration=integration, max_release=0)
    with translation.override("en"):
        module_check_connection(module=module)
        sync_ips_run(integration=integration, max_release=50)
    # A compatibility report of each panel, an account sync that finds an account in another state, and a
    # control panel opened from each client area: their texts are stored in one language and read in the other.
    ispmanager.app.users[readers["ru"].services[0].panel_username]["active"] = False
    with translation.override("ru"):
        module_probe(module=module)
        integration_probe(integration=integration)
        assert sync_accounts_run(module=module).found  # the account in another state, at least
    for language, reader in readers.items():
        with translation.override("en" if language == "ru" else "ru"):
            service_panel_login_url(service=reader.services[0], by=reader.user)
    return readers


# The pages.


def client_pages(reader: Reader) -> list[tuple[str, str, dict]]:
    """(name, address, GET parameters) of the client area and the shop-window, as `reader` sees them."""
    tariff = reader.services[0].tariff_id
    pages = [
        ("shop", reverse("shop"), {}),
        ("order", reverse("order", args=[tariff]), {}),
        ("client area", reverse("client_area"), {}),
        ("balance", reverse("balance"), {}),
        ("orders", reverse("orders"), {}),
        ("payment", reverse("payment_detail", args=[reader.payment_id]), {}),
    ]
    for service in reader.services:
        pages.append((f"service {service.domain}", reverse("service_detail", args=[service.pk]), {}))
    active = reader.services[0]
    for action in ("suspend", "close"):
        pages.append((f"confirm {action}", reverse("service_action", args=[active.pk]), {"action": action}))
    # Renew now: one period the balance covers, and twelve for a service suspended for non-payment that it does not.
    for service, periods in ((active, 1), (reader.unpaid, 12)):
        params = {"periods": periods, "expires": service.expires_at.isoformat()}
        pages.append((f"confirm renewal of {service.domain}", reverse("service_renew", args=[service.pk]), params))
    pages.append(("notifications", reverse("notifications"), {}))
    return pages


def visitor_pages() -> list[tuple[str, str, dict]]:
    return [
        ("login", reverse("login"), {}),
        ("register", reverse("register"), {}),
        ("password reset", reverse("password_reset"), {}),
        ("password reset sent", reverse("password_reset_done"), {}),
        ("password reset link expired", reverse("password_reset_confirm", args=["MQ", "expired-token"]), {}),
        ("password reset done", reverse("password_reset_complete"), {}),
    ]


def admin_pages(staff_user) -> list[tuple[str, str, dict]]:
    """The admin's index and, for every registered model, its list, its add page, and the change and history pages of its rows."""
    pages = [("admin index", reverse("admin:index"), {})]
    request = RequestFactory().get("/admin/")
    request.user = staff_user
    for model, model_admin in sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label):
        info = model._meta.app_label, model._meta.model_name
        label = model._meta.label
        pages.append((f"{label} list", reverse("admin:{}_{}_changelist".format(*info)), {}))
        if model_admin.has_add_permission(request):
            pages.append((f"{label} add", reverse("admin:{}_{}_add".format(*info)), {}))
        rows = model_admin.get_queryset(request).order_by("pk")
        for row in rows if model is Service else rows[:2]:
            pages.append((f"{label} #{row.pk}", reverse("admin:{}_{}_change".format(*info), args=[row.pk]), {}))
        if row := rows.first():
            pages.append((f"{label} #{row.pk} history", reverse("admin:{}_{}_history".format(*info), args=[row.pk]), {}))
    # Pages of the admin's own beyond the model's: a service's paid-until date, a run's items.
    overdue = Service.objects.filter(domain="overdue-ru.example.com").get()
    pages.append((f"billing.Service #{overdue.pk} paid-until", reverse("admin:billing_service_expiry", args=[overdue.pk]), {}))
    for run in BillingRun.objects.order_by("pk"):
        pages.append((f"billing run {run} items", reverse("admin:billing_billingrunitem_changelist"), {"run__id__exact": run.pk}))
    return pages


def rendered(language: str, readers: dict[str, Reader], staff_user) -> list[tuple[str, str, str]]:
    """(name, address, text) of every page in `language`: the client area as each reader sees it, the admin as staff do."""
    visitor, staff = Browser(), Browser()
    staff.force_login(staff_user)
    clients = {}
    for reader_language, reader in readers.items():
        clients[reader_language] = Browser()
        clients[reader_language].force_login(reader.user)
    with translation.override(language):
        groups = [(visitor, "", visitor_pages()), (staff, "", admin_pages(staff_user))]
        groups += [(clients[key], f"{key} client's ", client_pages(reader)) for key, reader in readers.items()]
        groups.append((visitor, "", [("shop, logged out", reverse("shop"), {}), ("no such page", reverse("shop") + "nowhere/", {})]))
        # What a client reads after an action: the message of a payment the balance cannot cover.
        short = {key: reverse("service_pay", args=[reader.services[-1].pk]) for key, reader in readers.items()}
    pages = []
    for browser, whose, group in groups:
        for name, address, params in group:
            response = browser.get(address, params)
            expected = 404 if name == "no such page" else 200
            text = PageText(response.content.decode()).text if response.status_code == expected else f"<answered {response.status_code}>"
            pages.append((whose + name, address, text))
    for key, address in short.items():
        response = clients[key].post(address, follow=True)
        pages.append((f"{key} client's payment with too little money", address, PageText(response.content.decode()).text))
    return pages


def report(problems: dict[tuple[str, str], list[str]], title: str) -> str:
    lines = [f"{title}: {sum(map(len, problems.values()))} on {len(problems)} pages"]
    for (name, address), found in sorted(problems.items()):
        lines.append(f"{name} ({address}):")
        lines += [f"  {line}" for line in found]
    return "\n".join(lines)


def test_the_scanner_finds_messages_of_the_catalog_and_of_the_source():
    msgids = project_msgids()

    assert msgids["Service #%(id)d, first payment"].startswith("billing/services.py:")
    assert "billing/services.py" in msgids["Not enough money on the balance: %(missing)s more is needed."]
    assert msgids["Order history"].startswith("templates/account/")
    assert "Released %(released)d, marked allocated %(allocated)d, skipped %(skipped)d, failed %(failed)d." in msgids
    assert "paid" not in msgids  # one word: too short to tell from data


def test_the_scanner_reads_a_page_as_its_reader_does():
    html = (
        '<title>Услуга</title><p title="Enter your password to see it">Платёж <b>P1</b>, Service #12,'
        '   first\xa0payment</p><script>var x = "Order history";</script><textarea>Order history</textarea>'
        '<input type="submit" value="Place order"><input type="hidden" value="Show password">'
    )

    found = dict(english_left(PageText(html).text))

    assert found.keys() == {"Service #%(id)d, first payment", "Place order", "Enter your password to see it"}
    assert found["Service #%(id)d, first payment"] == "Service #12, first payment"
    assert [words for words, _ in russian_left(PageText(html).text)] == ["Услуга", "Платёж"]
    assert russian_left("Старт: Сайты на PHP") == []  # what the tariff is called, in the language it was typed in


def test_the_russian_client_area_and_admin_have_no_english_left(world, staff_user):
    problems = {}
    for name, address, text in rendered("ru", world, staff_user):
        found = [
            f"{msgid!r} ({'translated, but the page shows English' if catalog().get(msgid) else 'missing from the Russian catalog'};"
            f" from {project_msgids()[msgid]}): “{shown}”"
            for msgid, shown in english_left(text)
        ]
        if text.startswith("<answered"):
            found.append(f"the page did not render: {text}")
        if found:
            problems[(name, address)] = found

    assert not problems, report(problems, "English left on the Russian pages")


def test_the_english_client_area_and_admin_have_no_russian_left(world, staff_user):
    problems = {}
    for name, address, text in rendered("en", world, staff_user):
        found = [f"“{words}” in “…{around}…”" for words, around in russian_left(text)]
        if text.startswith("<answered"):
            found.append(f"the page did not render: {text}")
        if found:
            problems[(name, address)] = found

    assert not problems, report(problems, "Russian left on the English pages")
