"""Admin changelists run a fixed number of queries, however many rows they show (no N+1)."""

from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from billing.api.tokens import token_create
from billing.choices import LedgerEntryKind
from billing.models import LedgerEntry
from billing.services import ledger_entry_add
from billing.webhooks.models import EventType, WebhookDelivery, WebhookEndpoint, WebhookEvent
from tests.factories import (
    ClientFactory,
    IPAssignmentFactory,
    IPmanagerIntegrationFactory,
    ProcessingModuleFactory,
    ServiceFactory,
    TariffPlanFactory,
    TariffResourceFactory,
    UserFactory,
)


def add_clients(count, staff_user):
    for _ in range(count):
        client = ClientFactory()
        client.users.add(staff_user)
        LedgerEntry.objects.create(client=client, kind=LedgerEntryKind.TOPUP, amount=Decimal("100.00"))
        LedgerEntry.objects.create(client=client, kind=LedgerEntryKind.ADJUSTMENT, amount=Decimal("-30.00"))


def add_ledger_entries(count, staff_user):
    for _ in range(count):
        LedgerEntry.objects.create(client=ClientFactory(), kind=LedgerEntryKind.TOPUP, amount=Decimal("10.00"), created_by=staff_user)


def add_documents(count, staff_user):
    for _ in range(count):
        ledger_entry_add(client=ClientFactory(), kind=LedgerEntryKind.TOPUP, amount=Decimal("10.00"))  # with its receipt


def add_tariffs(count, staff_user):
    for _ in range(count):
        TariffResourceFactory(tariff=TariffPlanFactory())


def add_services(count, staff_user):
    for _ in range(count):
        ServiceFactory()


def add_modules(count, staff_user):
    department = Group.objects.get_or_create(name="Support")[0]
    for _ in range(count):
        ProcessingModuleFactory(department=department, ipmanager=IPmanagerIntegrationFactory())


def add_integrations(count, staff_user):
    IPmanagerIntegrationFactory.create_batch(count, admin_username="root", admin_password="pw", ignored_ip_types=["public"])


def add_assignments(count, staff_user):
    IPAssignmentFactory.create_batch(count)


def add_webhook_events(count, staff_user):
    for _ in range(count):
        WebhookEvent.objects.create(type=EventType.SERVICE_RENEWED, data={"id": 1})


def add_webhook_deliveries(count, staff_user):
    endpoint = WebhookEndpoint.objects.create(url=f"https://hooks{count}.example.com/", secret="whsec_c2VjcmV0", event_types=[])
    for _ in range(count):
        WebhookDelivery.objects.create(event=WebhookEvent.objects.create(type=EventType.SERVICE_RENEWED, data={}), endpoint=endpoint)


def add_api_tokens(count, staff_user):
    for number in range(count):
        token_create(user=UserFactory(), name=f"Integration {number}", scopes=["read", "write"])


# Changelist, how to add rows to it, and the most queries its page may run (whatever the row count).
CHANGELISTS = [
    pytest.param("admin:billing_client_changelist", add_clients, 5, id="clients-with-balance"),
    pytest.param("admin:billing_ledgerentry_changelist", add_ledger_entries, 7, id="ledger-entries"),
    pytest.param("admin:billing_document_changelist", add_documents, 7, id="documents"),
    pytest.param("admin:billing_tariffplan_changelist", add_tariffs, 6, id="tariff-plans"),
    pytest.param("admin:billing_service_changelist", add_services, 6, id="services"),
    pytest.param("admin:provisioning_processingmodule_changelist", add_modules, 6, id="processing-modules"),
    pytest.param("admin:ipam_sync_ipmanagerintegration_changelist", add_integrations, 5, id="ipmanager-integrations"),
    pytest.param("admin:ipam_sync_ipassignment_changelist", add_assignments, 7, id="ip-assignments"),
    pytest.param("admin:billing_webhookevent_changelist", add_webhook_events, 7, id="webhook-events"),
    pytest.param("admin:billing_webhookdelivery_changelist", add_webhook_deliveries, 7, id="webhook-deliveries"),
    pytest.param("admin:billing_apitoken_changelist", add_api_tokens, 5, id="api-tokens"),
]


def list_page_queries(client, url, rows):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    assert response.context["cl"].result_count == rows
    assert len(response.context["cl"].result_list) == rows
    return len(queries)


@pytest.mark.parametrize(("url_name", "add_rows", "max_queries"), CHANGELISTS)
def test_admin_changelist_query_count_does_not_grow_with_rows(admin_client, staff_user, url_name, add_rows, max_queries):
    url = reverse(url_name)
    add_rows(5, staff_user)
    admin_client.get(url)  # warm caches (session, content types) so both measurements see the same state

    with_5_rows = list_page_queries(admin_client, url, 5)
    add_rows(45, staff_user)
    with_50_rows = list_page_queries(admin_client, url, 50)

    assert with_5_rows == with_50_rows


@pytest.mark.parametrize(("url_name", "add_rows", "max_queries"), CHANGELISTS)
def test_admin_changelist_with_50_rows_stays_within_a_fixed_query_budget(
    admin_client, staff_user, django_assert_max_num_queries, url_name, add_rows, max_queries
):
    url = reverse(url_name)
    add_rows(50, staff_user)

    with django_assert_max_num_queries(max_queries):
        response = admin_client.get(url)

    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == 50
