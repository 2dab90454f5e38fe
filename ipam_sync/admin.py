from django.contrib import admin
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from billing.forms import NameListField, WriteOnlySecretsForm
from ipam_sync.models import IPAssignment, IPmanagerIntegration


class IPmanagerIntegrationForm(WriteOnlySecretsForm):
    secret_fields = ("password", "admin_password")
    ignored_ip_types = NameListField(
        label=_("IP types to ignore"),
        required=False,
        help_text=_("IP groups from IPmanager → IP groups, separated by commas, e.g. public, reserved."),
    )

    class Meta:
        model = IPmanagerIntegration
        fields = "__all__"

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("admin_username"):
            # Without an administrator login a stored administrator password has no use: forget it.
            cleaned["admin_password"] = ""
        return cleaned


@admin.register(IPmanagerIntegration)
class IPmanagerIntegrationAdmin(SimpleHistoryAdmin):
    form = IPmanagerIntegrationForm
    list_display = ["name", "url", "username", "ignore_ip_types", "check_ok", "checked_at"]
    search_fields = ["name", "url"]
    readonly_fields = ["checked_at", "check_ok", "check_message"]
    fieldsets = [
        (_("Connection"), {"fields": ["name", "url", "username", "password"]}),
        (
            _("Synchronization of IP addresses"),
            {"fields": ["admin_username", "admin_password", "ignore_ip_types", "ignored_ip_types"]},
        ),
        (_("Connection check"), {"fields": ["checked_at", "check_ok", "check_message"]}),
    ]


@admin.register(IPAssignment)
class IPAssignmentAdmin(admin.ModelAdmin):
    list_display = ["address", "ip_type", "service", "integration", "allocated_at", "released_at"]
    list_filter = ["integration", "ip_type", ("released_at", admin.EmptyFieldListFilter)]
    list_select_related = ["service__tariff", "integration"]
    search_fields = ["address", "service__domain", "service__panel_username"]
    raw_id_fields = ["service"]
