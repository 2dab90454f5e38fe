from django.contrib import admin
from django.db.models import OuterRef, Subquery
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from billing.admin_actions import ReadOnlyMixin
from billing.forms import NameListField
from ipam_sync.models import IPAssignment, IPmanagerIntegration, SyncChange, SyncRun
from ipam_sync.services import integration_check_connection
from provisioning.coremanager.admin import ConnectionCheckedAdmin, ConnectionCheckedForm


class IPmanagerIntegrationForm(ConnectionCheckedForm):
    secret_fields = ("password", "admin_password")
    ignored_ip_types = NameListField(
        label=_("IP types to ignore"),
        required=False,
        help_text=_("IP groups from IPmanager → IP groups, separated by commas, e.g. public, reserved."),
    )

    class Meta:
        model = IPmanagerIntegration
        fields = "__all__"
        help_texts = {
            "url": _("The full path to the IPmanager control panel, e.g. https://ip.example.com:1500/ipmgr"),
            "username": _("An IPmanager account with User permissions: billing gets and returns IP addresses with it."),
        }

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("admin_username"):
            # Without an administrator login a stored administrator password has no use: forget it.
            cleaned["admin_password"] = ""
        return cleaned

    @staticmethod
    def check_panel(instance):
        return integration_check_connection(integration=instance, save=False)


@admin.register(IPmanagerIntegration)
class IPmanagerIntegrationAdmin(ConnectionCheckedAdmin):
    form = IPmanagerIntegrationForm
    list_display = ["name", "url", "username", "ignore_ip_types", "check_ok", "check_message", "last_sync"]
    search_fields = ["name", "url"]
    readonly_fields = ["checked_at", "check_ok", "check_message"]
    fieldsets = [
        (_("Connection"), {"fields": ["name", "url", "username", "password", "verify_tls", "ca_certificate"]}),
        (
            _("Synchronization of IP addresses"),
            {"fields": ["admin_username", "admin_password", "ignore_ip_types", "ignored_ip_types"]},
        ),
        (_("Connection check"), {"fields": ["checked_at", "check_ok", "check_message"]}),
    ]

    def get_queryset(self, request):
        last = SyncRun.objects.filter(integration=OuterRef("pk")).order_by("-started_at", "-pk")
        return (
            super()
            .get_queryset(request)
            .annotate(
                last_sync_status=Subquery(last.values("status")[:1]),
                last_sync_at=Subquery(last.values("started_at")[:1]),
                last_sync_message=Subquery(last.values("message")[:1]),
            )
        )

    @admin.display(description=_("last sync"))
    def last_sync(self, obj):
        if not obj.last_sync_status:
            return "—"
        url = reverse("admin:ipam_sync_syncrun_changelist") + f"?integration__id__exact={obj.pk}"
        label = SyncRun.Status(obj.last_sync_status).label
        when = timezone.localtime(obj.last_sync_at).strftime("%Y-%m-%d %H:%M")
        return format_html('<a href="{}">{} {}</a><br>{}', url, label, when, obj.last_sync_message)

    @staticmethod
    def check_panel(obj):
        return integration_check_connection(integration=obj)


@admin.register(IPAssignment)
class IPAssignmentAdmin(admin.ModelAdmin):
    list_display = ["address", "ip_type", "service", "integration", "allocated_at", "released_at"]
    list_filter = ["integration", "ip_type", ("released_at", admin.EmptyFieldListFilter)]
    list_select_related = ["service__tariff", "integration"]
    search_fields = ["address", "service__domain", "service__panel_username"]
    raw_id_fields = ["service"]


@admin.register(SyncRun)
class SyncRunAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = [
        "started_at",
        "integration",
        "status",
        "dry_run",
        "as_administrator",
        "listed",
        "released",
        "allocated",
        "skipped",
        "failed",
        "changes_link",
        "message",
    ]
    list_filter = ["status", "dry_run", "integration"]
    list_select_related = ["integration"]
    date_hierarchy = "started_at"

    @admin.display(description=_("changes"))
    def changes_link(self, obj):
        url = reverse("admin:ipam_sync_syncchange_changelist") + f"?run__id__exact={obj.pk}"
        return format_html('<a href="{}">{}</a>', url, _("changes"))


@admin.register(SyncChange)
class SyncChangeAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["address", "action", "result", "reason", "run"]
    list_filter = ["action", "result", "run__integration"]
    list_select_related = ["run__integration"]
    search_fields = ["address", "reason"]
