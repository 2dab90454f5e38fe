from datetime import timedelta

from django.core.management.base import BaseCommand

from provisioning.services import operations_recover


class Command(BaseCommand):
    help = (
        "Requeue panel operations whose worker stopped (its attempt's lease ran out) or whose task was lost "
        "(cron runs it every 5 minutes)."
    )

    def handle(self, *args, **options):
        interrupted, late = operations_recover(late_after=timedelta(minutes=5))
        self.stdout.write(f"Requeued {interrupted} interrupted and {late} overdue operations.")
