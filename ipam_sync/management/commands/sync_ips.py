from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from billing.command_options import non_negative_int
from ipam_sync.models import IPmanagerIntegration, SyncRun
from ipam_sync.sync import SyncBusy, sync_ips_run


class Command(BaseCommand):
    help = (
        "Reconcile IP address statuses between IPmanager and billing: release in IPmanager what no service "
        "holds, mark allocated what a live service holds. Cron runs it daily at 03:15."
    )

    def add_arguments(self, parser):
        parser.add_argument("integrations", nargs="*", metavar="NAME", help="integrations to sync (default: all)")
        parser.add_argument("--dry-run", action="store_true", help="print and record the plan, change nothing")
        parser.add_argument(
            "--max-release",
            type=non_negative_int,
            # A string default goes through the type too: a negative SYNC_IPS_MAX_RELEASE is refused as well.
            default=str(settings.SYNC_IPS_MAX_RELEASE),
            help="refuse a run that would release more addresses than this (default: %(default)s)",
        )
        parser.add_argument("--force", action="store_true", help="release above --max-release")
        parser.add_argument(
            "--release-foreign",
            action="store_true",
            help="also release addresses not taken by this billing (needs administrator credentials)",
        )

    def handle(self, *args, **options):
        integrations = IPmanagerIntegration.objects.order_by("name")
        if options["integrations"]:
            integrations = integrations.filter(name__in=options["integrations"])
            unknown = set(options["integrations"]) - {integration.name for integration in integrations}
            if unknown:
                raise CommandError(_("No IPmanager integration named %(names)s.") % {"names": ", ".join(sorted(unknown))})
        progress = self._progress if self.stdout.isatty() else None
        troubles = []
        for integration in integrations:
            try:
                run = sync_ips_run(
                    integration=integration,
                    dry_run=options["dry_run"],
                    max_release=options["max_release"],
                    force=options["force"],
                    release_foreign=options["release_foreign"],
                    progress=progress,
                )
            except SyncBusy as busy:
                self.stdout.write(_("%(integration)s: skipped, %(reason)s.") % {"integration": integration, "reason": busy})
                continue
            self._report(run, verbose=options["dry_run"] or options["verbosity"] > 1)
            if run.status in (SyncRun.Status.FAILED, SyncRun.Status.REFUSED) or run.failed:
                troubles.append(integration.name)
        if troubles:
            raise CommandError(_("sync_ips did not complete for: %(names)s.") % {"names": ", ".join(troubles)})

    def _report(self, run: SyncRun, *, verbose: bool) -> None:
        head = (
            _("%(integration)s (addresses in IPmanager: %(listed)d, as administrator): %(status)s. %(message)s")
            if run.as_administrator
            else _("%(integration)s (addresses in IPmanager: %(listed)d, as integration user): %(status)s. %(message)s")
        )
        status = run.get_status_display()
        self.stdout.write(head % {"integration": run.integration, "listed": run.listed, "status": status, "message": run.message})
        changes = run.changes.all() if verbose else run.changes.exclude(result="done").exclude(result="planned")
        for change in changes.iterator():
            self.stdout.write(f"  {change.get_action_display()} {change.address}: {change.get_result_display()} ({change.reason})")

    def _progress(self, done: int, total: int) -> None:
        self.stdout.write(f"\r  {done}/{total}", ending="\n" if done == total else "")
        self.stdout.flush()
