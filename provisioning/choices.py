from django.db import models
from django.utils.translation import gettext_lazy as _


class ModuleKind(models.TextChoices):
    ISPMANAGER5 = "ispmanager5", _("ISPmanager 5")


class PanelEdition(models.TextChoices):
    LITE = "lite", "Lite"
    BUSINESS = "business", "Business"


class OperationStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")


class AttemptOutcome(models.TextChoices):
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    RETRY = "retry", _("Failed, will be retried")
    FAILED = "failed", _("Failed")
    EXPIRED = "expired", _("Lease expired: the worker stopped")


PENDING_OPERATION_STATUSES = (OperationStatus.QUEUED, OperationStatus.RUNNING)
