"""What an event says: a JSON snapshot of the object as the change committed it.

Ids, codes and amounts as strings (exact decimals), times in ISO 8601 UTC. Every snapshot carries the
object's own time of change (`updated_at`, or when it finished): deliveries may arrive out of order
and late retries, so a receiver keeps the newest it has seen and drops older ones.
"""

from datetime import UTC, date, datetime

from django.conf import settings
from django.utils import translation


def _time(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


def _day(value: date | None) -> str | None:
    return value.isoformat() if value else None


def _in_site_language(text):
    """Names and messages in the site's language (LANGUAGE_CODE), whoever's request or worker wrote the event."""
    with translation.override(settings.LANGUAGE_CODE):
        return text()


def service_payload(service) -> dict:
    return {
        "id": service.pk,
        "client_id": service.client_id,
        "status": service.status,
        "suspend_reason": service.suspend_reason,
        "tariff": {"id": service.tariff_id, "name": _in_site_language(lambda: str(service.tariff.name))},
        "domain": service.domain,
        "period": service.period,
        "price": str(service.price),
        "auto_renew": service.auto_renew,
        "expires_at": _time(service.expires_at),
        "updated_at": _time(service.updated_at),
    }


def payment_payload(payment) -> dict:
    return {
        "id": payment.pk,
        "client_id": payment.client_id,
        "reference": payment.reference,
        "gateway": payment.gateway,
        "status": payment.status,
        "amount": str(payment.amount),
        "currency": payment.currency,
        "external_id": payment.external_id,
        "paid_at": _time(payment.paid_at),
    }


def invoice_payload(document) -> dict:
    return {
        "id": document.pk,
        "number": document.number,
        "client_id": document.client_id,
        "service_id": document.service_id,
        "currency": document.currency,
        "net": str(document.net),
        "tax": str(document.tax),
        "gross": str(document.gross),
        "issued_at": _time(document.issued_at),
    }


def operation_payload(operation) -> dict:
    return {
        "id": operation.pk,
        "service_id": operation.service_id,
        "action": operation.action,
        "status": operation.status,
        "attempts": operation.attempts,
        "error": _in_site_language(lambda: str(operation.last_error)),
        "finished_at": _time(operation.finished_at),
    }


def sync_run_payload(run) -> dict:
    return {
        "id": run.pk,
        "integration_id": run.integration_id,
        "status": run.status,
        "dry_run": run.dry_run,
        "listed": run.listed,
        "released": run.released,
        "allocated": run.allocated,
        "skipped": run.skipped,
        "failed": run.failed,
        "started_at": _time(run.started_at),
        "finished_at": _time(run.finished_at),
    }


def billing_run_payload(run) -> dict:
    return {
        "id": run.pk,
        "day": _day(run.day),
        "status": run.status,
        "dry_run": run.dry_run,
        "renewed": run.renewed,
        "notified": run.notified,
        "suspended": run.suspended,
        "resumed": run.resumed,
        "deleted": run.deleted,
        "failed": run.failed,
        "started_at": _time(run.started_at),
        "finished_at": _time(run.finished_at),
    }
