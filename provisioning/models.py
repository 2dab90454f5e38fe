from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _
from encrypted_fields.fields import EncryptedCharField
from simple_history.models import HistoricalRecords

from billing.choices import ProductType
from billing.validators import validate_panel_url
from provisioning.choices import ModuleKind, PanelEdition


class DataCenter(models.Model):
    """A place where panels run; processing modules belong to one."""

    name = models.CharField(_("name"), max_length=100, unique=True)

    class Meta:
        verbose_name = _("data center")
        verbose_name_plural = _("data centers")
        ordering = ["name"]

    def __str__(self):
        return self.name


class ProcessingModule(models.Model):
    """A control panel that billing creates and manages accounts in."""

    product_type = models.CharField(_("Product type"), max_length=16, choices=ProductType.choices)
    kind = models.CharField(_("Module"), max_length=32, choices=ModuleKind.choices, default=ModuleKind.ISPMANAGER5)
    url = models.CharField(
        _("URL"),
        max_length=300,
        validators=[validate_panel_url],
        help_text=_("The full URL of the control panel, e.g. https://panel.example.com:1500/ispmgr"),
    )
    username = models.CharField(
        _("Username"),
        max_length=100,
        help_text=_(
            "An ISPmanager user with Admin permissions: billing uses it to create, suspend and delete "
            "client accounts. ISPmanager Business needs Admin credentials; Reseller credentials do not work."
        ),
    )
    password = EncryptedCharField(_("Password"), max_length=200)
    verify_tls = models.BooleanField(
        _("verify TLS certificate"),
        default=True,
        help_text=_("ISPmanager ships a self-signed certificate: give its CA below, or switch verification off."),
    )
    ca_certificate = models.TextField(
        _("trusted CA certificate"), blank=True, help_text=_("PEM text of the CA that signed the panel's certificate.")
    )
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
    checked_at = models.DateTimeField(_("checked at"), null=True, blank=True)
    check_ok = models.BooleanField(_("connection works"), null=True)
    check_message = models.TextField(_("check result"), blank=True)
    history = HistoricalRecords(excluded_fields=["password"])

    class Meta:
        verbose_name = _("processing module")
        verbose_name_plural = _("processing modules")
        ordering = ["name"]

    def __str__(self):
        return self.name

    def clean(self):
        errors = {}
        if self.ca_certificate and "-----BEGIN CERTIFICATE-----" not in self.ca_certificate:
            errors["ca_certificate"] = _("Paste the certificate in PEM form (-----BEGIN CERTIFICATE----- ...).")
        if self.pk and (others := list(self.tariffs.exclude(product_type=self.product_type).values_list("name", flat=True))):
            errors["product_type"] = _("Tariff plans of another product type use this module: %(tariffs)s. Move them first.") % {
                "tariffs": ", ".join(others)
            }
        if errors:
            raise ValidationError(errors)
