from datetime import timedelta

from django.core.management.base import BaseCommand
from django.utils.translation import gettext as _

from billing.webhooks.delivery import deliveries_recover
from provisioning.services import operations_recover


class Command(BaseCommand):
    help = (
        "Requeue panel operations whose worker stopped (its attempt's lease ran out) or whose task was lost, "
        "and webhook deliveries left due the same way (cron runs it every 5 minutes)."
    )

    def handle(self, *args, **options):
        interrupted, late = operations_recover(late_after=timedelta(minutes=5))
        message = _("Operations queued again: %(interrupted)d interrupted (their worker stopped), %(late)d overdue (their task was lost).")
        self.stdout.write(message % {"interrupted": interrupted, "late": late})
        deliveries = deliveries_recover(late_after=timedelta(minutes=5))
        if deliveries:  # said only when there were some
            message = _("Webhook deliveries queued again: %(count)d (their task was lost or their worker stopped).")
            self.stdout.write(message % {"count": deliveries})
