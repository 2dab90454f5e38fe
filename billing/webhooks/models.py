"""Webhooks: the endpoints staff configure, the outbox of events and every delivery attempt."""

import uuid

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from billing.secret_fields import SecretField


class EventType(models.TextChoices):
    SERVICE_ACTIVATED = "service.activated", _("Service activated")
    SERVICE_SUSPENDED = "service.suspended", _("Service suspended")
    SERVICE_RESUMED = "service.resumed", _("Service resumed")
    SERVICE_DELETED = "service.deleted", _("Service deleted")
    SERVICE_RENEWED = "service.renewed", _("Service renewed")
    SERVICE_CHANGED = "service.changed", _("Service changed")
    PAYMENT_CONFIRMED = "payment.confirmed", _("Payment confirmed")
    INVOICE_ISSUED = "invoice.issued", _("Invoice issued")
    OPERATION_FAILED = "operation.failed", _("Panel operation failed")
    SYNC_FINISHED = "sync.finished", _("IPmanager sync finished")
    BILLING_RUN_FINISHED = "billing_run.finished", _("Billing run finished")


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    SUCCEEDED = "succeeded", _("Delivered")
    FAILED = "failed", _("Gave up")


def new_event_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


class WebhookEndpoint(models.Model):
    url = models.URLField(_("URL"), max_length=500)
    secret = SecretField(_("signing secret"), max_length=200)
    event_types = models.JSONField(_("event types"), default=list)
    enabled = models.BooleanField(_("enabled"), default=True)
    description = models.CharField(_("description"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("webhook endpoint")
        verbose_name_plural = _("webhook endpoints")
        ordering = ["pk"]

    def __str__(self):
        return self.url


class WebhookEvent(models.Model):
    """One thing that happened, written in the same transaction as the change it reports."""

    event_id = models.CharField(_("event ID"), max_length=40, unique=True, default=new_event_id, editable=False)
    type = models.CharField(_("type"), max_length=40, choices=EventType.choices)
    data = models.JSONField(_("data"))
    created_at = models.DateTimeField(_("created at"), default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("webhook event")
        verbose_name_plural = _("webhook events")
        ordering = ["-pk"]

    def __str__(self):
        return f"{self.type} {self.event_id}"


class WebhookDelivery(models.Model):
    """One event on its way to one endpoint; `locked_until` is the lease of the worker sending it."""

    event = models.ForeignKey(WebhookEvent, on_delete=models.CASCADE, related_name="deliveries", verbose_name=_("event"))
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries", verbose_name=_("endpoint"))
    status = models.CharField(_("status"), max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt at"), null=True, blank=True, db_index=True)
    locked_until = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        ordering = ["-pk"]
        constraints = [models.UniqueConstraint(fields=["event", "endpoint"], name="webhook_delivery_once_per_endpoint")]

    def __str__(self):
        return f"{self.event} → {self.endpoint}"


class WebhookAttempt(models.Model):
    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log", verbose_name=_("delivery"))
    started_at = models.DateTimeField(_("started at"), default=timezone.now)
    duration_ms = models.PositiveIntegerField(_("duration, ms"), default=0)
    response_status = models.PositiveSmallIntegerField(_("response code"), null=True, blank=True)
    error = models.CharField(_("error"), max_length=500, blank=True)
    succeeded = models.BooleanField(_("succeeded"), default=False)

    class Meta:
        verbose_name = _("webhook delivery attempt")
        verbose_name_plural = _("webhook delivery attempts")
        ordering = ["pk"]

    def __str__(self):
        return _("attempt #%(id)d") % {"id": self.pk}
