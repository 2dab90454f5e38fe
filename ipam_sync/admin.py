from django import forms
from django.conf import settings
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import OuterRef, Subquery
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from billing.admin_actions import ReadOnlyMixin
from billing.forms import NameListField
from ipam_sync.ipmanager.functions import DEFAULT_FUNCTIONS, PURPOSE_LABELS, validate_function_name, validate_function_names
from ipam_sync.ipmanager.probe import integration_probe
from ipam_sync.models import IPAssignment, IPmanagerIntegration, SyncChange, SyncRun
from ipam_sync.services import integration_check_connection
from provisioning.coremanager.admin import ConnectionCheckedAdmin, ConnectionCheckedForm, PanelProbeAdminMixin

FUNCTION_FIELDS = {f"function_{purpose}": purpose for purpose in DEFAULT_FUNCTIONS}


def function_name_field(purpose: str) -> forms.CharField:
    """An override of one function name: empty is the documented default, shown as the placeholder."""
    return forms.CharField(
        label=PURPOSE_LABELS[purpose],
        required=False,
        max_length=64,
        validators=[validate_function_name],
        widget=forms.TextInput(attrs={"placeholder": DEFAULT_FUNCTIONS[purpose]}),
    )


class IPmanagerIntegrationForm(ConnectionCheckedForm):
    """Besides the model's fields, one input per name in `function_names` (the Advanced section)."""

    secret_fields = ("password", "admin_password")
    ignored_ip_types = NameListField(
        label=_("IP types to ignore"),
        required=False,
        help_text=_("IP groups from IPmanager → IP groups, separated by commas, e.g. public, reserved."),
    )
    function_list = function_name_field("list")
    function_read = function_name_field("read")
    function_allocate = function_name_field("allocate")
    function_release = function_name_field("release")
    function_groups = function_name_field("groups")
    function_whoami = function_name_field("whoami")
    function_actionlist = function_name_field("actionlist")
    function_allocate_group = function_name_field("allocate_group")
    function_allocate_address = function_name_field("allocate_address")
    function_allocate_owner = function_name_field("allocate_owner")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        overrides = self.instance.function_names or {}
        for name, purpose in FUNCTION_FIELDS.items():
            self.initial.setdefault(name, overrides.get(purpose, ""))

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
        self._clean_function_names(cleaned)
        return cleaned

    def _clean_function_names(self, cleaned) -> None:
        """The overrides the inputs give; set on the instance before the connection check calls the panel with them."""
        if any(name in self.errors for name in FUNCTION_FIELDS):
            return
        overrides = {}
        for name, purpose in FUNCTION_FIELDS.items():
            value = cleaned.get(name)
            if value and value != DEFAULT_FUNCTIONS[purpose]:
                overrides[purpose] = value
        try:
            validate_function_names(overrides)
        except ValidationError as error:
            self.add_error(None, error)
            return
        self.instance.function_names = overrides

    @staticmethod
    def check_panel(instance):
        return integration_check_connection(integration=instance, save=False)


@admin.register(IPmanagerIntegration)
class IPmanagerIntegrationAdmin(PanelProbeAdminMixin, ConnectionCheckedAdmin):
    form = IPmanagerIntegrationForm
    list_display = ["name", "url", "username", "ignore_ip_types", "check_ok", "check_message", "last_sync"]
    search_fields = ["name", "url"]
    actions = [*ConnectionCheckedAdmin.actions, "probe_panel"]
    readonly_fields = ["checked_at", "check_ok", "check_message"]
    fieldsets = [
        (_("Connection"), {"fields": ["name", "url", "username", "password", "verify_tls", "ca_certificate"]}),
        (
            _("Synchronization of IP addresses"),
            {"fields": ["admin_username", "admin_password", "ignore_ip_types", "ignored_ip_types"]},
        ),
        (_("Connection check"), {"fields": ["checked_at", "check_ok", "check_message"]}),
        (
            _("Advanced"),
            {
                "classes": ["collapse"],
                "fields": list(FUNCTION_FIELDS),
                "description": _(
                    "The names of the functions (and allocation parameters) billing calls in IPmanager. Leave a field empty "
                    "for the documented default shown in it; fill one only when this panel names it otherwise (see panel_probe)."
                ),
            },
        ),
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

    @staticmethod
    def probe(obj):
        return integration_probe(integration=obj, timeout=settings.PANEL_CHECK_TIMEOUT)


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
