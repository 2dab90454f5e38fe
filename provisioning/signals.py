"""Billing asks, provisioning queues: billing sends `panel_action_requested`, this receiver writes the operation.

The receiver runs synchronously inside the sender's transaction (Django signals are plain calls), so the
operation row commits or rolls back together with the billing change that asked for it: a charge never
exists without its operation, nor an operation without its charge. The panel is called later, by the
task worker, after the commit (`operation_request` schedules it with `transaction.on_commit`).
"""

from django.dispatch import receiver

from billing.signals import panel_action_requested
from provisioning.services import operation_request


@receiver(panel_action_requested, dispatch_uid="provisioning.queue_operation")
def queue_operation(sender, *, service, action, by=None, reason="", payload=None, **kwargs):
    operation_request(service=service, action=action, requested_by=by, reason=reason, payload=payload)
