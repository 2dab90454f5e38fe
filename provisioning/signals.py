"""Billing asks, provisioning queues: the operation row is written in billing's transaction."""

from django.dispatch import receiver

from billing.signals import panel_action_requested
from provisioning.services import operation_request


@receiver(panel_action_requested, dispatch_uid="provisioning.queue_operation")
def queue_operation(sender, *, service, action, by=None, reason="", payload=None, **kwargs):
    operation_request(service=service, action=action, requested_by=by, reason=reason, payload=payload)
