from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand

from provisioning.services import operations_recover


class Command(BaseCommand):
    help = "Requeue panel operations a dead worker or a lost task left behind (cron runs it every 5 minutes)."

    def handle(self, *args, **options):
        # An attempt lasts at most the panel's timeouts; twice that and it is certainly over.
        stuck_after = timedelta(seconds=2 * sum(settings.PANEL_TIMEOUT) + 60)
        stuck, late = operations_recover(stuck_after=stuck_after, late_after=timedelta(minutes=5))
        self.stdout.write(f"Requeued {stuck} interrupted and {late} overdue operations.")
