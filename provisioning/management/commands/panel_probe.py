import json

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from ipam_sync.ipmanager.probe import integration_probe
from ipam_sync.models import IPmanagerIntegration
from provisioning.coremanager.probe import Report, Status
from provisioning.ispmanager.probe import module_probe
from provisioning.models import ProcessingModule


class Command(BaseCommand):
    help = (
        "Check what billing expects of each panel against the real one, with read-only calls: its functions, the login's "
        "level, the edition, the shape of lists and forms, templates, IP groups. Prints the report, keeps it on the module "
        "or integration, and exits 1 when something billing needs is missing."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "names", nargs="*", metavar="MODULE_OR_INTEGRATION", help="processing modules or IPmanager integrations to probe (default: all)"
        )
        parser.add_argument("--json", action="store_true", help="print the reports as JSON")

    def handle(self, *args, **options):
        modules, integrations = self._targets(options["names"])
        reports = [module_probe(module=module) for module in modules]
        reports += [integration_probe(integration=integration) for integration in integrations]
        if options["json"]:
            self.stdout.write(json.dumps([report.rendered() for report in reports], ensure_ascii=False, indent=2))
        else:
            for report in reports:
                self._print(report)
        lacking = [report.name for report in reports if not report.ok]
        if lacking:
            raise CommandError(_("Billing needs something these panels lack: %(names)s.") % {"names": ", ".join(lacking)}, returncode=1)

    def _targets(self, names: list[str]):
        modules = ProcessingModule.objects.order_by("name")
        integrations = IPmanagerIntegration.objects.order_by("name")
        if names:
            modules, integrations = modules.filter(name__in=names), integrations.filter(name__in=names)
            known = {module.name for module in modules} | {integration.name for integration in integrations}
            if unknown := sorted(set(names) - known):
                message = _("No processing module or IPmanager integration named %(names)s.")
                raise CommandError(message % {"names": ", ".join(unknown)}, returncode=2)
        return list(modules), list(integrations)

    def _print(self, report: Report) -> None:
        kind = ProcessingModule._meta.verbose_name if report.panel == "ispmanager" else IPmanagerIntegration._meta.verbose_name
        head = _("%(name)s (%(kind)s, %(url)s, login %(user)s)")
        self.stdout.write(head % {"name": report.name, "kind": kind, "url": report.url, "user": report.username})
        width = max(len(status.label) for status in Status)
        style = {Status.OK: self.style.SUCCESS, Status.DIFFERENT: self.style.WARNING, Status.MISSING: self.style.ERROR}
        for finding in report.findings:
            label = style.get(finding.status, str)(finding.status.label.ljust(width))
            self.stdout.write(f"  {label}  {finding.message}")
            if finding.advice:
                self.stdout.write(f"  {' ' * width}  → {finding.advice}")
        self.stdout.write(f"  {report.summary}\n")
