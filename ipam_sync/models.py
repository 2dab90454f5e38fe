from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy
from simple_history.models import HistoricalRecords

from billing.constraints import ConstraintMessages
from billing.secret_fields import SecretField
from billing.stored_text import StoredTextField
from billing.validators import validate_ip_type_names
from ipam_sync.ipmanager.functions import validate_function_names
from provisioning.coremanager.models import PanelConnection

DEFAULT_IP_TYPE = "alias"


class IPmanagerIntegration(PanelConnection):
    """An IPmanager that hands out dedicated IPs, and how billing reconciles with it."""

    name = models.CharField(_("Name"), max_length=100, unique=True)
    admin_username = models.CharField(
        _("Administrator login"),
        max_length=100,
        blank=True,
        help_text=_(
            "Optional. Lets synchronization change statuses regardless of the user's privileges. Addresses "
            "allocated by hand (without this billing's note) are still left alone unless sync_ips is run "
            "with --release-foreign."
        ),
    )
    admin_password = SecretField(_("Administrator password"), max_length=200, null=True, blank=True)
    ignore_ip_types = models.BooleanField(_("Ignore types of IP addresses"), default=False)
    ignored_ip_types = models.JSONField(
        _("IP types to ignore"),
        default=list,
        blank=True,
        validators=[validate_ip_type_names],
        help_text=_("IP groups (IPmanager → IP groups) that synchronization leaves out."),
    )
    function_names = models.JSONField(
        _("function names"),
        default=dict,
        blank=True,
        validators=[validate_function_names],
        help_text=_("Only when this panel names a function differently from the documented default (see panel_probe's report)."),
    )
    history = HistoricalRecords(excluded_fields=["password", "admin_password", "probe_report", "probed_at"])

    class Meta:
        verbose_name = _("IPmanager integration")
        verbose_name_plural = _("IPmanager integrations")
        ordering = ["name"]

    def __str__(self):
        return self.name

    def clean(self):
        super().clean()
        if self.ignore_ip_types and not self.ignored_ip_types:
            raise ValidationError({"ignored_ip_types": _("List the IP types to ignore, or uncheck the box.")})
        if self.admin_username and not self.admin_password:
            raise ValidationError({"admin_password": _("Enter the administrator's password too.")})


class IPAssignment(ConstraintMessages, models.Model):
    """A dedicated address from IPmanager held by a service; live until released."""

    integration = models.ForeignKey(
        IPmanagerIntegration, on_delete=models.PROTECT, related_name="assignments", verbose_name=_("IPmanager integration")
    )
    service = models.ForeignKey("billing.Service", on_delete=models.PROTECT, related_name="ip_assignments", verbose_name=_("service"))
    address = models.GenericIPAddressField(_("address"))
    ip_type = models.CharField(_("IP type"), max_length=64, default=DEFAULT_IP_TYPE)
    allocated_at = models.DateTimeField(_("allocated at"), auto_now_add=True)
    released_at = models.DateTimeField(_("released at"), null=True, blank=True)

    constraint_messages = {
        "ipassignment_one_live_service_per_address": _("This address is already assigned to a service: release it there first."),
    }

    class Meta:
        verbose_name = _("IP assignment")
        verbose_name_plural = _("IP assignments")
        ordering = ["-allocated_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["address"], condition=Q(released_at__isnull=True), name="ipassignment_one_live_service_per_address"
            ),
        ]

    def __str__(self):
        return self.address


class SyncRun(ConstraintMessages, models.Model):
    """One reconciliation of an integration's addresses between IPmanager and billing."""

    class Status(models.TextChoices):
        RUNNING = "running", _("Running")
        DONE = "done", pgettext_lazy("sync run", "Done")
        FAILED = "failed", _("Failed")
        REFUSED = "refused", _("Refused")

    integration = models.ForeignKey(IPmanagerIntegration, on_delete=models.CASCADE, related_name="sync_runs", verbose_name=_("integration"))
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.RUNNING)
    dry_run = models.BooleanField(_("dry run"), default=False)
    as_administrator = models.BooleanField(_("with administrator credentials"), default=False)
    listed = models.PositiveIntegerField(_("addresses in IPmanager"), default=0)
    released = models.PositiveIntegerField(_("released"), default=0)
    allocated = models.PositiveIntegerField(_("marked allocated"), default=0)
    skipped = models.PositiveIntegerField(_("skipped"), default=0)
    failed = models.PositiveIntegerField(_("failed"), default=0)
    message = StoredTextField(_("message"), blank=True)
    started_at = models.DateTimeField(_("started at"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    constraint_messages = {
        "syncrun_one_running_per_integration": _("A synchronization of this integration is already running."),
    }

    class Meta:
        verbose_name = _("sync run")
        verbose_name_plural = _("sync runs")
        ordering = ["-started_at", "-pk"]
        constraints = [
            # Two runs at once for one integration would both apply the same changes.
            models.UniqueConstraint(fields=["integration"], condition=Q(status="running"), name="syncrun_one_running_per_integration"),
        ]

    def __str__(self):
        return f"{self.integration} {self.started_at:%Y-%m-%d %H:%M} {self.get_status_display()}"


class SyncChange(models.Model):
    """One address a sync run released, marked allocated, skipped, or only planned to."""

    class Action(models.TextChoices):
        RELEASE = "release", _("Release in IPmanager")
        ALLOCATE = "allocate", _("Mark allocated in IPmanager")

    class Result(models.TextChoices):
        PLANNED = "planned", _("Planned (not applied)")
        DONE = "done", pgettext_lazy("sync change", "Done")
        SKIPPED = "skipped", _("Skipped")
        FAILED = "failed", _("Failed")

    run = models.ForeignKey(SyncRun, on_delete=models.CASCADE, related_name="changes", verbose_name=_("run"))
    action = models.CharField(_("action"), max_length=16, choices=Action.choices)
    address = models.GenericIPAddressField(_("address"))
    result = models.CharField(_("result"), max_length=16, choices=Result.choices)
    reason = StoredTextField(_("why"), blank=True)

    class Meta:
        verbose_name = _("sync change")
        verbose_name_plural = _("sync changes")
        ordering = ["run", "pk"]

    def __str__(self):
        return f"{self.get_action_display()} {self.address}: {self.get_result_display()}"
