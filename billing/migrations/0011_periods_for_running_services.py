"""Services that were running before the billing cycle existed get a period: none of them would ever be renewed otherwise.

The anchor is when the account was first created (the first change to active; the payment or the order
when that row is missing); the service counts as paid up to the first period end after the migration,
so nobody is charged for the past and every service renews on its own day of the month from then on.
"""

from django.db import migrations
from django.utils import timezone

from billing.periods import months_after, months_between


def periods_for_running_services(apps, schema_editor):
    Service = apps.get_model("billing", "Service")
    ServiceStatusChange = apps.get_model("billing", "ServiceStatusChange")
    now = timezone.now()
    running = Service.objects.filter(status__in=["active", "suspended"], period_anchor__isnull=True)
    for service in running.iterator():
        first = ServiceStatusChange.objects.filter(service=service, to_status="active").order_by("created_at", "pk").first()
        anchor = first.created_at if first else (service.paid_at or service.created_at)
        months = max(service.period, months_between(anchor, now) // service.period * service.period)
        while months_after(anchor, months) <= now:
            months += service.period
        service.period_anchor, service.expires_at = anchor, months_after(anchor, months)
        service.save(update_fields=["period_anchor", "expires_at"])


class Migration(migrations.Migration):
    dependencies = [("billing", "0010_billing_runs_and_notifications")]

    operations = [migrations.RunPython(periods_for_running_services, migrations.RunPython.noop)]
