from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from provisioning.accounts_sync import SyncBusy, ispmanager_modules, sync_accounts_run
from provisioning.models import AccountSyncRun


class Command(BaseCommand):
    help = (
        "Compare each ISPmanager module's accounts with billing's services: accounts missing, orphaned (marked as "
        "billing's, no live service), in another state, with other limits, or someone else's at a service's login. "
        "A dry run by default; --apply also queues resume, suspend and limit changes that make the panel match "
        "billing (never a deletion). Cron runs it daily at 03:45."
    )

    def add_arguments(self, parser):
        parser.add_argument("modules", nargs="*", metavar="NAME", help="processing modules to compare (default: every enabled one)")
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument("--dry-run", action="store_true", help="record and print what differs, queue nothing (the default)")
        mode.add_argument("--apply", action="store_true", help="also queue the safe fixes: resume, suspend, set limits")
        parser.add_argument(
            "--list-only",
            action="store_true",
            help="read the user list only: missing accounts and states, no limits, markers or orphans (one call per page)",
        )

    def handle(self, *args, **options):
        modules = ispmanager_modules()
        if options["modules"]:
            modules = modules.filter(name__in=options["modules"])
            unknown = set(options["modules"]) - {module.name for module in modules}
            if unknown:
                raise CommandError(_("No ISPmanager processing module named %(names)s.") % {"names": ", ".join(sorted(unknown))})
        troubles = []
        for module in modules:
            if not module.is_enabled and not options["modules"]:
                self.stdout.write(_("%(module)s: skipped, the module is disabled (name it to compare it anyway).") % {"module": module})
                continue
            try:
                run = sync_accounts_run(module=module, dry_run=not options["apply"], list_only=options["list_only"])
            except SyncBusy as busy:
                self.stdout.write(_("%(module)s: skipped, %(reason)s.") % {"module": module, "reason": busy})
                continue
            self._report(run)
            if run.status == AccountSyncRun.Status.FAILED:
                troubles.append(module.name)
        if troubles:
            raise CommandError(_("sync_accounts did not complete for: %(names)s.") % {"names": ", ".join(troubles)})

    def _report(self, run: AccountSyncRun) -> None:
        head = _(
            "%(module)s (accounts in the panel: %(accounts)d, services compared: %(services)d, read one by one: %(forms)d): "
            "%(status)s. %(message)s"
        )
        values = {"module": run.module, "accounts": run.accounts, "services": run.services, "forms": run.forms_read}
        self.stdout.write(head % {**values, "status": run.get_status_display(), "message": run.message})
        for finding in run.findings.order_by("kind", "login", "pk").iterator():
            service = _("service #%(id)d") % {"id": finding.service_id} if finding.service_id else _("no service")
            line = f"  {finding.get_kind_display()}: {finding.login or '-'} ({service}). {finding.details}"
            if finding.state == finding.State.DISMISSED:
                line += " " + _("Dismissed.")
            elif finding.state == finding.State.QUEUED:
                line += " " + _("Fix queued: %(fix)s.") % {"fix": finding.get_fix_display()}
            elif finding.fix:
                line += " " + _("Fix: %(fix)s.") % {"fix": finding.get_fix_display()}
            if finding.note:
                line += f" ({finding.note})"
            self.stdout.write(line)
