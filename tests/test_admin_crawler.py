"""Every admin page of every registered model opens without a server error, in both languages.

The crawler walks `admin.site._registry`, so a model registered tomorrow is crawled tomorrow; it
fails when a registered model has no row here, so that its change and history pages are opened too.
"""

from datetime import date
from decimal import Decimal

import pytest
from axes.models import AccessFailureLog
from django.contrib import admin
from django.test import Client as BrowserClient
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext_noop

from billing.api.tokens import token_create
from billing.choices import BillingAction, BillingOutcome, BillingPeriod, DocumentKind, LedgerEntryKind, NotificationKind, ResourceKind
from billing.models import BillingRun, BillingRunItem, EncryptionKeyCheck
from billing.notifications import notify
from billing.payments import payment_start
from billing.services import client_register, ledger_entry_add, order_place, service_pay
from billing.stored_text import StoredText
from billing.webhooks.delivery import secret_generate
from billing.webhooks.models import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent
from provisioning.choices import AttemptOutcome, OperationStatus
from provisioning.models import AccountSyncFinding, AccountSyncRun
from provisioning.tasks import run_operation
from tests.factories import (
    IPAssignmentFactory,
    IPmanagerIntegrationFactory,
    OperationAttemptFactory,
    OperationFactory,
    ProcessingModuleFactory,
    ServiceFactory,
    SyncChangeFactory,
    TariffPlanFactory,
    TariffResourceFactory,
)
from tests.server_errors import ServerErrorLog

# Searches staff might paste, and some nobody should: each must give a list or an error message.
HOSTILE_SEARCHES = ["\x00", "' OR 1=1 --", "%_\\", "\u202e😀e\u0301", "9" * 30, "A" * 10_000]
# Page numbers and orderings that are not: the admin answers them with its "?e=1" page.
HOSTILE_PARAMS = [{"p": "9" * 30}, {"p": "-1"}, {"o": "999.-x"}, {"unknown_field__exact": "\x00"}]
CLIENT_PASSWORD = "a-long-client-password-42"


@pytest.fixture
def every_model_has_rows(db, staff_user, settings):
    """At least one row of every model the admin shows, made the way the product makes it."""
    settings.PAYMENT_GATEWAYS = ["manual"]
    settings.TASKS = {**settings.TASKS, "database": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    customer = client_register(email="ann@example.com", name="Ann's Bakery", password=CLIENT_PASSWORD, language="en")
    ledger_entry_add(client=customer, kind=LedgerEntryKind.TOPUP, amount=Decimal("5000.00"), reference="bank transfer 42")
    module = ProcessingModuleFactory(ipmanager=IPmanagerIntegrationFactory(), department=staff_user.groups.create(name="Support"))
    tariff = TariffPlanFactory(processing_module=module, allow_dedicated_ip=True)
    TariffResourceFactory(tariff=tariff, kind=ResourceKind.DATABASES, included=1, max_quantity=None)
    user = customer.users.get()
    month = BillingPeriod.MONTH
    paid = order_place(client=customer, user=user, tariff=tariff, period=month, domain="ann.example", resources={"databases": 2})
    service_pay(service=paid, by=user)  # queues the "create account" operation; its charge has an invoice
    invoice = customer.documents.get(kind=DocumentKind.INVOICE)
    ledger_entry_add(client=customer, kind=LedgerEntryKind.REFUND, amount=Decimal("1.00"), corrects=invoice)  # and a credit note
    order_place(client=customer, user=None, tariff=tariff, period=month, domain="unpaid.example", by_staff=True)
    payment_start(client=customer, gateway_code="manual", amount="300.00")
    failed = OperationFactory(service=ServiceFactory(client=customer, tariff=tariff), status=OperationStatus.FAILED, last_error="no")
    OperationAttemptFactory(operation=failed, outcome=AttemptOutcome.FAILED, error="panel said no")
    run_operation.using(backend="database").enqueue(failed.pk)
    IPAssignmentFactory(service=paid, integration=module.ipmanager)
    SyncChangeFactory(run__integration=module.ipmanager, reason="not in billing")
    EncryptionKeyCheck.objects.create(token="known value")
    # A daily run that could not renew one service, and the notice it sent about it.
    now = timezone.now()
    run = BillingRun.objects.create(day=date(2026, 3, 28), started_at=now, lease_until=now, finished_at=now, notified=1, failed=1)
    refused = StoredText(gettext_noop("Service #%(id)d has no paid period yet: pay for the order first."), {"id": paid.pk})
    BillingRunItem.objects.create(run=run, service=paid, action=BillingAction.RENEW, outcome=BillingOutcome.FAILED, message=refused)
    low_balance = NotificationKind.LOW_BALANCE
    notify(service=paid, kind=low_balance, key=f"{low_balance}:{paid.pk}:2026-03-28", day=run.day, params={"expires": "2026-03-31"})
    # Logging in leaves axes' records: a login, then (a success resets them) a failure and its attempt.
    BrowserClient().post(reverse("login"), {"username": "ann@example.com", "password": CLIENT_PASSWORD})
    BrowserClient().post(reverse("login"), {"username": "ann@example.com", "password": "wrong password"})
    # Axes writes its failure log only when AXES_ENABLE_ACCESS_FAILURE_LOG is on; its admin is there either way.
    AccessFailureLog.objects.create(username="ann@example.com", ip_address="127.0.0.1", user_agent="crawler", path_info="/accounts/login/")
    sync = AccountSyncRun.objects.create(module=module, status=AccountSyncRun.Status.DONE, found=1, finished_at=now)
    missing = StoredText(gettext_noop("The panel has no account %(login)s."), {"login": "user1"})
    AccountSyncFinding.objects.create(run=sync, kind=AccountSyncFinding.Kind.MISSING, service=paid, login="user1", details=missing)
    # A webhook endpoint and a delivery of the paid order's invoice.issued event that it gave up on after a 500.
    hooks = "https://hooks.example.com/billing"
    endpoint = WebhookEndpoint.objects.create(url=hooks, secret=secret_generate(), event_types=["invoice.issued"])
    event = WebhookEvent.objects.first()
    delivery = WebhookDelivery.objects.create(event=event, endpoint=endpoint, status=DeliveryStatus.FAILED, attempts=1)
    WebhookAttempt.objects.create(delivery=delivery, response_status=500, error="The endpoint did not answer with a 2xx status.")
    token_create(user=user, name="Shop site", scopes=["read", "write"])


def superuser_request(user):
    request = RequestFactory().get("/admin/")
    request.user = user
    return request


def registered():
    return sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label)


def test_every_registered_admin_model_has_a_row_to_crawl(every_model_has_rows, staff_user):
    request = superuser_request(staff_user)

    empty = [model._meta.label for model, model_admin in registered() if not model_admin.get_queryset(request).exists()]

    assert not empty, f"give these models a row in every_model_has_rows: {empty}"


# Hostile searches and parameters reach the same code in either language: they are sent in English only.
@pytest.mark.parametrize(("language", "hostile"), [("en", True), ("ru", False)], ids=["en", "ru"])
def test_every_admin_page_of_every_model_answers_without_server_error(every_model_has_rows, staff_user, language, hostile):
    crawl = ServerErrorLog()
    crawl.browser.force_login(staff_user)
    request = superuser_request(staff_user)
    opened = 0
    with translation.override(language):
        assert reverse("admin:index").startswith("/ru/admin/" if language == "ru" else "/admin/")
        crawl.open(reverse("admin:index"))
        for model, model_admin in registered():
            info = model._meta.app_label, model._meta.model_name
            changelist_url = reverse("admin:{}_{}_changelist".format(*info))
            changelist = crawl.open(changelist_url)
            if changelist.status_code == 200:
                cl = changelist.context["cl"]
                for spec in cl.filter_specs:
                    # The first choice is "All"; the one after it narrows the list.
                    choices = list(spec.choices(cl))
                    crawl.open(changelist_url + choices[min(1, len(choices) - 1)]["query_string"])
            if hostile and model_admin.get_search_fields(request):
                for search in HOSTILE_SEARCHES:
                    crawl.open(changelist_url, {"q": search})
            for params in HOSTILE_PARAMS if hostile else []:
                crawl.open(changelist_url, params)
            if model_admin.has_add_permission(request):
                crawl.open(reverse("admin:{}_{}_add".format(*info)))
                crawl.open(reverse("admin:{}_{}_add".format(*info)), {}, method="post")
            row = model_admin.get_queryset(request).first()
            if row is not None:
                crawl.open(reverse("admin:{}_{}_change".format(*info), args=[row.pk]))
                crawl.open(reverse("admin:{}_{}_history".format(*info), args=[row.pk]))
                if model_admin.has_delete_permission(request, row):
                    crawl.open(reverse("admin:{}_{}_delete".format(*info), args=[row.pk]))
                opened += 1

    assert not crawl.failures, crawl.report()
    assert opened == len(admin.site._registry)


# What a hand-made POST may put in any field, ids of related rows included (autocomplete, filter_horizontal).
HOSTILE_FIELD_VALUES = ["abc", "²", "1e400", "9" * 23, "-1", "\x00", "A" * 10_000]


def test_every_admin_form_answers_hostile_values_in_every_field_without_server_error(every_model_has_rows, staff_user):
    crawl = ServerErrorLog()
    crawl.browser.force_login(staff_user)
    request = superuser_request(staff_user)
    posted = 0
    for model, model_admin in registered():
        info = model._meta.app_label, model._meta.model_name
        row = model_admin.get_queryset(request).first()
        forms = []
        if model_admin.has_add_permission(request):
            forms.append((reverse("admin:{}_{}_add".format(*info)), model_admin.get_form(request)))
        if row is not None and model_admin.has_change_permission(request, row):
            forms.append((reverse("admin:{}_{}_change".format(*info), args=[row.pk]), model_admin.get_form(request, row)))
        for url, form in forms:
            for value in HOSTILE_FIELD_VALUES:
                crawl.open(url, dict.fromkeys(form.base_fields, value), method="post")
                posted += 1

    assert not crawl.failures, crawl.report()
    assert posted > 0
