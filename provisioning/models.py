from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from billing.choices import PanelAction, ProductType, ServiceStatus
from billing.constraints import ConstraintMessages
from billing.secret_fields import SecretField
from billing.stored_text import StoredTextField
from provisioning.choices import PENDING_OPERATION_STATUSES, AttemptOutcome, ModuleKind, OperationStatus, PanelEdition
from provisioning.coremanager.models import PanelConnection


class DataCenter(models.Model):
    """A place where panels run; processing modules belong to one."""

    name = models.CharField(_("name"), max_length=100, unique=True)

    class Meta:
        verbose_name = _("data center")
        verbose_name_plural = _("data centers")
        ordering = ["name"]

    def __str__(self):
        return self.name


class ProcessingModule(PanelConnection):
    """A control panel that billing creates and manages accounts in."""

    product_type = models.CharField(_("Product type"), max_length=16, choices=ProductType.choices)
    kind = models.CharField(_("Module"), max_length=32, choices=ModuleKind.choices, default=ModuleKind.ISPMANAGER5)
    data_center = models.ForeignKey(DataCenter, on_delete=models.PROTECT, related_name="modules", verbose_name=_("Data center"))
    name = models.CharField(_("Name"), max_length=100, unique=True)
    department = models.ForeignKey(
        Group,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("Department"),
        help_text=_("The staff group that is told about this module's failed operations."),
    )
    ipmanager = models.ForeignKey(
        "ipam_sync.IPmanagerIntegration",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="modules",
        verbose_name=_("IPmanager integration"),
        help_text=_("Where dedicated IPs for this module's services come from."),
    )
    is_enabled = models.BooleanField(_("enabled"), default=True)
    # What the last connection check found.
    edition = models.CharField(_("edition"), max_length=16, choices=PanelEdition.choices, blank=True)
    caller_level = models.CharField(_("level"), max_length=32, blank=True)
    history = HistoricalRecords(excluded_fields=["password", "probe_report", "probed_at"])

    class Meta:
        verbose_name = _("processing module")
        verbose_name_plural = _("processing modules")
        ordering = ["name"]

    def __str__(self):
        return self.name

    def clean(self):
        super().clean()
        if self.pk and (others := list(self.tariffs.exclude(product_type=self.product_type).values_list("name", flat=True))):
            message = _("Tariff plans of another product type use this module: %(tariffs)s. Move them first.")
            raise ValidationError({"product_type": message % {"tariffs": ", ".join(others)}})

    def get_backend(self, **options):
        """The backend of this module's kind (see `provisioning.modules.base.register`)."""
        from provisioning.modules.base import BACKENDS

        return BACKENDS[self.kind](self, **options)


class Operation(ConstraintMessages, models.Model):
    """One panel action for a service, with its attempts; failed ones form the staff queue."""

    service = models.ForeignKey("billing.Service", on_delete=models.PROTECT, related_name="operations", verbose_name=_("service"))
    action = models.CharField(_("action"), max_length=32, choices=PanelAction.choices)
    status = models.CharField(_("status"), max_length=16, choices=OperationStatus.choices, default=OperationStatus.QUEUED, db_index=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt at"), null=True, blank=True)
    last_error = StoredTextField(_("last error"), blank=True)
    result = StoredTextField(_("result"), blank=True)
    reason = StoredTextField(_("why"), blank=True)
    payload = models.JSONField(_("details"), default=dict, blank=True)
    # The password an open or change_password sets, chosen once so that every attempt sets the same.
    secret = SecretField(_("secret"), max_length=200, null=True, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("who asked")
    )
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("resolved by")
    )
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    constraint_messages = {
        "operation_one_pending_per_service": _("This service already has an operation in progress: wait for it to finish."),
    }

    class Meta:
        verbose_name = _("operation")
        verbose_name_plural = _("operations")
        ordering = ["-created_at", "-pk"]
        constraints = [
            # Actions on one account run one after another, in the order they were asked for.
            models.UniqueConstraint(
                fields=["service"], condition=models.Q(status__in=PENDING_OPERATION_STATUSES), name="operation_one_pending_per_service"
            ),
        ]

    def __str__(self):
        return f"{self.get_action_display()} #{self.service_id}"

    @property
    def waiting_reason(self) -> str:
        """Why a queued operation does not run, or "" (reads the service's tariff and module)."""
        module = self.service.tariff.processing_module
        if self.status == OperationStatus.QUEUED and not module.is_enabled:
            return gettext("Waiting: the processing module %(module)s is disabled.") % {"module": module}
        return ""


class OperationAttempt(ConstraintMessages, models.Model):
    """One try at an operation by one worker; only the attempt that still holds the claim applies its result."""

    operation = models.ForeignKey(Operation, on_delete=models.CASCADE, related_name="attempt_log", verbose_name=_("operation"))
    number = models.PositiveSmallIntegerField(_("attempt"))
    worker = models.CharField(_("worker"), max_length=200)
    started_at = models.DateTimeField(_("started at"))
    # Renewed on every panel call; recovery takes over only an attempt whose lease has run out.
    heartbeat_at = models.DateTimeField(_("last sign of life"))
    lease_until = models.DateTimeField(_("lease until"))
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    duration = models.DurationField(_("duration"), null=True, blank=True)
    outcome = models.CharField(_("outcome"), max_length=16, choices=AttemptOutcome.choices, default=AttemptOutcome.RUNNING)
    error = StoredTextField(_("error"), blank=True)

    constraint_messages = {
        "operationattempt_one_running_per_operation": _("This operation already has a running attempt."),
    }

    class Meta:
        verbose_name = _("attempt")
        verbose_name_plural = _("attempts")
        ordering = ["operation", "number"]
        constraints = [
            models.UniqueConstraint(fields=["operation", "number"], name="operationattempt_number_once"),
            models.UniqueConstraint(
                fields=["operation"], condition=models.Q(outcome="running"), name="operationattempt_one_running_per_operation"
            ),
        ]

    def __str__(self):
        return f"{self.operation} #{self.number}"


class StaffQueueManager(models.Manager):
    def get_queryset(self):
        failed = models.Q(status=OperationStatus.FAILED, resolved_at__isnull=True)
        waiting = models.Q(status=OperationStatus.QUEUED, service__tariff__processing_module__is_enabled=False)
        return super().get_queryset().filter(failed | waiting)


class FailedOperation(Operation):
    """The staff queue: operations that gave up and nobody has resolved yet, and those held by a disabled module."""

    objects = StaffQueueManager()

    class Meta:
        proxy = True
        verbose_name = _("failed operation")
        verbose_name_plural = _("staff queue")


class AccountSyncRun(ConstraintMessages, models.Model):
    """One comparison of a processing module's panel accounts with billing's services (`manage.py sync_accounts`)."""

    class Status(models.TextChoices):
        RUNNING = "running", _("Running")
        DONE = "done", pgettext_lazy("account sync run", "Done")
        FAILED = "failed", _("Failed")

    module = models.ForeignKey(
        ProcessingModule, on_delete=models.CASCADE, related_name="account_sync_runs", verbose_name=_("processing module")
    )
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.RUNNING)
    dry_run = models.BooleanField(_("dry run"), default=True)
    list_only = models.BooleanField(
        _("list only"), default=False, help_text=_("Status and missing accounts only: no limits, markers or orphans.")
    )
    accounts = models.PositiveIntegerField(_("accounts in the panel"), default=0)
    services = models.PositiveIntegerField(_("services compared"), default=0)
    in_flight = models.PositiveIntegerField(_("services with an operation on its way"), default=0)
    forms_read = models.PositiveIntegerField(_("accounts read one by one"), default=0)
    found = models.PositiveIntegerField(_("findings"), default=0)
    queued = models.PositiveIntegerField(_("fixes queued"), default=0)
    message = StoredTextField(_("message"), blank=True)
    started_at = models.DateTimeField(_("started at"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    constraint_messages = {
        "accountsyncrun_one_running_per_module": _("An account sync of this processing module is already running."),
    }

    class Meta:
        verbose_name = _("account sync run")
        verbose_name_plural = _("account sync runs")
        ordering = ["-started_at", "-pk"]
        constraints = [
            # Two runs at once for one module would queue the same fixes twice.
            models.UniqueConstraint(fields=["module"], condition=models.Q(status="running"), name="accountsyncrun_one_running_per_module"),
        ]

    def __str__(self):
        return f"{self.module} {self.started_at:%Y-%m-%d %H:%M} {self.get_status_display()}"


# What a sync may queue to make the panel match billing: never an account created or deleted, never money.
SAFE_FIXES = (PanelAction.RESUME, PanelAction.SUSPEND, PanelAction.SET_LIMITS)


class AccountSyncFinding(models.Model):
    """One difference an account sync run found between a panel account and billing's service, and what became of it."""

    class Kind(models.TextChoices):
        MISSING = "missing", _("Account missing in the panel")
        ORPHAN = "orphan", _("Billing's account with no live service")
        STATUS = "status", _("Status differs")
        LIMITS = "limits", _("Limits differ")
        FOREIGN = "foreign", _("Someone else's account at the service's login")

    class State(models.TextChoices):
        OPEN = "open", _("Open")
        QUEUED = "queued", _("Fix queued")
        DISMISSED = "dismissed", _("Dismissed")

    run = models.ForeignKey(AccountSyncRun, on_delete=models.CASCADE, related_name="findings", verbose_name=_("run"))
    kind = models.CharField(pgettext_lazy("account sync finding", "kind"), max_length=16, choices=Kind.choices)
    login = models.CharField(_("panel login"), max_length=100, blank=True)
    service = models.ForeignKey(
        "billing.Service", on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("service")
    )
    # The service's status when the run read it: a fix is queued only while it still holds.
    billing_status = models.CharField(_("status in billing"), max_length=16, choices=ServiceStatus.choices, blank=True)
    details = StoredTextField(_("what differs"), blank=True)
    # Only what makes the panel match billing without creating or deleting anything is ever proposed.
    fix = models.CharField(_("fix"), max_length=32, choices=[(a.value, a.label) for a in SAFE_FIXES], blank=True)
    state = models.CharField(_("state"), max_length=16, choices=State.choices, default=State.OPEN)
    operation = models.ForeignKey(
        Operation, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("operation")
    )
    note = StoredTextField(_("note"), blank=True)
    # The same difference found again gets the same signature: a dismissal holds while it persists.
    signature = models.CharField(_("signature"), max_length=64, db_index=True, editable=False)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("resolved by")
    )
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)

    class Meta:
        verbose_name = _("account sync finding")
        verbose_name_plural = _("account sync findings")
        ordering = ["run", "pk"]

    def __str__(self):
        return f"{self.get_kind_display()} {self.login or '-'}"
