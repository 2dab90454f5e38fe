from django.conf import settings
from django_tasks import task

from ipam_sync.models import SyncRun
from ipam_sync.sync import sync_ips_continue


@task()
def sync_ips_dry_run(run_id: int) -> None:
    """The panel work of a dry run the API recorded (POST /api/v1/sync-runs): it reads IPmanager's list, changes nothing."""
    run = SyncRun.objects.select_related("integration").get(pk=run_id)
    sync_ips_continue(run=run, max_release=settings.SYNC_IPS_MAX_RELEASE)
