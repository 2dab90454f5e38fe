from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from encrypted_fields.fields import EncryptedCharField
from simple_history.models import HistoricalRecords

from billing.validators import validate_ip_type_names, validate_panel_url

DEFAULT_IP_TYPE = "alias"


class IPmanagerIntegration(models.Model):
    """An IPmanager that hands out dedicated IPs, and how billing reconciles with it."""

    name = models.CharField(_("Name"), max_length=100, unique=True)
    url = models.CharField(
        _("URL"),
        max_length=300,
        validators=[validate_panel_url],
        help_text=_("The full path to the IPmanager control panel, e.g. https://ip.example.com:1500/ipmgr"),
    )
    username = models.CharField(
        _("Username"),
        max_length=100,
        help_text=_("An IPmanager account with User permissions: billing gets and returns IP addresses with it."),
    )
    password = EncryptedCharField(_("Password"), max_length=200)
    admin_username = models.CharField(
        _("Administrator login"),
        max_length=100,
        blank=True,
        help_text=_(
            "Optional. Lets synchronization change statuses regardless of the user's privileges. Not "
            "recommended when IPmanager has addresses allocated by hand: they would be released."
        ),
    )
    admin_password = EncryptedCharField(_("Administrator password"), max_length=200, null=True, blank=True)
    ignore_ip_types = models.BooleanField(_("Ignore types of IP addresses"), default=False)
    ignored_ip_types = models.JSONField(
        _("IP types to ignore"),
        default=list,
        blank=True,
        validators=[validate_ip_type_names],
        help_text=_("IP groups (IPmanager → IP groups) that synchronization leaves out."),
    )
    checked_at = models.DateTimeField(_("checked at"), null=True, blank=True)
    check_ok = models.BooleanField(_("connection works"), null=True)
    check_message = models.TextField(_("check result"), blank=True)
    history = HistoricalRecords(excluded_fields=["password", "admin_password"])

    class Meta:
        verbose_name = _("IPmanager integration")
        verbose_name_plural = _("IPmanager integrations")
        ordering = ["name"]

    def __str__(self):
        return self.name

    def clean(self):
        if self.ignore_ip_types and not self.ignored_ip_types:
            raise ValidationError({"ignored_ip_types": _("List the IP types to ignore, or uncheck the box.")})
        if self.admin_username and not self.admin_password:
            raise ValidationError({"admin_password": _("Enter the administrator's password too.")})


class IPAssignment(models.Model):
    """A dedicated address from IPmanager held by a service; live until released."""

    integration = models.ForeignKey(
        IPmanagerIntegration, on_delete=models.PROTECT, related_name="assignments", verbose_name=_("IPmanager integration")
    )
    service = models.ForeignKey("billing.Service", on_delete=models.PROTECT, related_name="ip_assignments", verbose_name=_("service"))
    address = models.GenericIPAddressField(_("address"))
    ip_type = models.CharField(_("IP type"), max_length=64, default=DEFAULT_IP_TYPE)
    allocated_at = models.DateTimeField(_("allocated at"), auto_now_add=True)
    released_at = models.DateTimeField(_("released at"), null=True, blank=True)

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
