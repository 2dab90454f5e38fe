"""What every panel connection stores: where the panel is, how to log in, and what the last check and probe found."""

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _

from billing.secret_fields import SecretField
from billing.stored_text import StoredTextField
from provisioning.coremanager.validators import validate_panel_url


class PanelConnection(models.Model):
    """A COREmanager panel (ISPmanager, IPmanager) that billing logs in to; subclasses give the help texts."""

    url = models.CharField(_("URL"), max_length=300, validators=[validate_panel_url])
    username = models.CharField(_("Username"), max_length=100)
    password = SecretField(_("Password"), max_length=200)
    verify_tls = models.BooleanField(
        _("verify TLS certificate"),
        default=True,
        help_text=_("The panels ship a self-signed certificate: give its CA below, or switch verification off."),
    )
    ca_certificate = models.TextField(
        _("trusted CA certificate"), blank=True, help_text=_("PEM text of the CA that signed the panel's certificate.")
    )
    # What the last connection check found.
    checked_at = models.DateTimeField(_("checked at"), null=True, blank=True)
    check_ok = models.BooleanField(_("connection works"), null=True)
    check_message = StoredTextField(_("check result"), blank=True)
    # The last compatibility report of `panel_probe` (findings as codes and parameters, rendered in the reader's language).
    probe_report = models.JSONField(_("compatibility report"), default=dict, blank=True, editable=False)
    probed_at = models.DateTimeField(_("probed at"), null=True, blank=True, editable=False)

    class Meta:
        abstract = True

    def clean(self):
        if self.ca_certificate and "-----BEGIN CERTIFICATE-----" not in self.ca_certificate:
            raise ValidationError({"ca_certificate": _("Paste the certificate in PEM form (-----BEGIN CERTIFICATE----- ...).")})
