"""Each change emits its event, in its own transaction; endpoints not subscribed or disabled get nothing."""

from datetime import date

import pytest
from django.core.exceptions import ValidationError

from billing.choices import PanelAction, ServiceStatus, SuspendReason
from billing.cycle import billing_run
from billing.payments import payment_confirm, payment_start
from billing.services import service_renew, service_status_change
from billing.webhooks.addresses import webhook_url_check
from billing.webhooks.models import EventType, WebhookDelivery, WebhookEvent
from ipam_sync.sync import sync_ips_run
from provisioning.choices import OperationStatus
from provisioning.services import operation_run
from tests.factories import ClientFactory, IPmanagerIntegrationFactory, OperationFactory, ServiceFactory
from tests.webhooks.conftest import active_service, subscribe

pytestmark = pytest.mark.django_db


def types():
    return list(WebhookEvent.objects.order_by("pk").values_list("type", flat=True))


def test_status_changes_emit_activated_suspended_resumed_and_deleted_with_the_services_snapshot():
    service = ServiceFactory(status=ServiceStatus.PROCESSING)

    service_status_change(service=service, to=ServiceStatus.ACTIVE)
    service_status_change(service=service, to=ServiceStatus.SUSPENDED, suspend_reason=SuspendReason.STAFF)
    service_status_change(service=service, to=ServiceStatus.ACTIVE)
    service_status_change(service=service, to=ServiceStatus.DELETED)

    assert types() == ["service.activated", "service.suspended", "service.resumed", "service.deleted"]
    suspended = WebhookEvent.objects.get(type="service.suspended").data
    assert (suspended["id"], suspended["client_id"], suspended["status"]) == (service.pk, service.client_id, "suspended")
    assert suspended["suspend_reason"] == "staff"
    assert suspended["tariff"] == {"id": service.tariff_id, "name": service.tariff.name}
    assert suspended["updated_at"].endswith("Z")


def test_a_renewal_emits_service_renewed_and_its_invoice_invoice_issued():
    service = active_service()
    WebhookEvent.objects.all().delete()  # the top-up's receipt is no invoice: nothing is emitted for it anyway

    service_renew(service=service)

    assert types() == ["invoice.issued", "service.renewed"]
    invoice = WebhookEvent.objects.get(type="invoice.issued").data
    assert (invoice["client_id"], invoice["service_id"], invoice["gross"], invoice["currency"]) == (
        service.client_id, service.pk, "10.00", service.client.currency,
    )  # fmt: skip
    assert invoice["number"].startswith("INV-")


def test_confirming_a_payment_emits_payment_confirmed_once():
    client = ClientFactory()
    payment, _start = payment_start(client=client, gateway_code="manual", amount="150.00")

    payment_confirm(payment=payment)
    with pytest.raises(ValidationError):
        payment_confirm(payment=payment)  # already confirmed: nothing new

    assert types() == ["payment.confirmed"]
    data = WebhookEvent.objects.get().data
    assert (data["id"], data["client_id"], data["amount"], data["status"]) == (payment.pk, client.pk, "150.00", "paid")


def test_an_operation_that_lands_in_the_staff_queue_emits_operation_failed(settings, transactional_db):
    settings.PROVISIONING_MAX_ATTEMPTS = 1
    service = ServiceFactory(status=ServiceStatus.SUSPENDED, tariff__processing_module__url="http://127.0.0.1:9/ispmgr")
    operation = OperationFactory(service=service, action=PanelAction.RESUME)

    operation_run(operation_id=operation.pk)

    operation.refresh_from_db()
    assert operation.status == OperationStatus.FAILED
    assert types() == ["operation.failed"]
    data = WebhookEvent.objects.get().data
    assert (data["id"], data["service_id"], data["action"], data["status"], data["attempts"]) == (
        operation.pk, service.pk, "resume", "failed", 1,
    )  # fmt: skip
    assert data["error"]


def test_a_billing_run_emits_billing_run_finished_a_dry_run_too_saying_so():
    billing_run(day=date(2026, 3, 1), dry_run=True)
    billing_run(day=date(2026, 3, 1))

    assert types() == ["billing_run.finished", "billing_run.finished"]
    assert [event.data["dry_run"] for event in WebhookEvent.objects.order_by("pk")] == [True, False]
    assert WebhookEvent.objects.order_by("pk").last().data["day"] == "2026-03-01"


def test_a_sync_run_emits_sync_finished_with_its_counts(ipmanager):
    integration = IPmanagerIntegrationFactory(url=ipmanager.url, username="billing", password="secret")

    run = sync_ips_run(integration=integration, dry_run=True, max_release=50)

    assert types() == ["sync.finished"]
    data = WebhookEvent.objects.get().data
    assert (data["id"], data["integration_id"], data["dry_run"], data["status"]) == (run.pk, integration.pk, True, "done")


def test_only_enabled_endpoints_subscribed_to_the_type_get_a_delivery():
    wanted = subscribe("https://hooks.example.com/a", EventType.SERVICE_SUSPENDED)
    subscribe("https://hooks.example.com/b", EventType.SERVICE_RENEWED)
    subscribe("https://hooks.example.com/c", EventType.SERVICE_SUSPENDED, enabled=False)
    service = ServiceFactory(status=ServiceStatus.ACTIVE)

    service_status_change(service=service, to=ServiceStatus.SUSPENDED, suspend_reason=SuspendReason.STAFF)

    assert list(WebhookDelivery.objects.values_list("endpoint", "event__type")) == [(wanted.pk, "service.suspended")]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hooks",
        "http://localhost:8000/hooks",
        "http://10.1.2.3/",
        "http://192.168.0.10/",
        "http://172.16.5.5/",
        "http://169.254.169.254/latest/meta-data/",
        "http://100.64.0.1/",
        "http://0.0.0.0/",
        "http://224.0.0.1/",
        "http://240.0.0.1/",
        "http://[::1]/",
        "http://[fe80::1]/",
        "http://[fc00::1]/",
        "http://[::ffff:127.0.0.1]/",
    ],
)
def test_a_private_loopback_link_local_reserved_or_multicast_address_is_refused(settings, url):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False

    with pytest.raises(ValidationError) as refused:
        webhook_url_check(url)

    assert refused.value.code == "private_address"
    assert "webhooks go to public addresses only" in refused.value.messages[0]


def test_a_public_address_passes_and_the_setting_lets_private_ones_through(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    webhook_url_check("https://93.184.215.14/hooks")
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
    webhook_url_check("http://127.0.0.1:8080/hooks")


@pytest.mark.parametrize("url", ["ftp://93.184.215.14/", "file:///etc/passwd", "gopher://93.184.215.14/"])
def test_only_http_and_https_are_accepted(settings, url):
    with pytest.raises(ValidationError) as refused:
        webhook_url_check(url)

    assert refused.value.code == "scheme"
