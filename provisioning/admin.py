from django.conf import settings
from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext, ngettext_lazy

from billing.admin_actions import ReadOnlyMixin, bulk_action
from provisioning import admin_account_sync  # noqa: F401 (registers the account sync runs and findings)
from provisioning.coremanager.admin import ConnectionCheckedAdmin, ConnectionCheckedForm, PanelProbeAdminMixin
from provisioning.ispmanager.probe import module_probe
from provisioning.models import DataCenter, FailedOperation, Operation, OperationAttempt, ProcessingModule
from provisioning.services import module_check_connection, module_enable, module_operations_resume, operation_resolve, operation_retry


@admin.register(DataCenter)
class DataCenterAdmin(admin.ModelAdmin):
    list_display = ["name"]
    search_fields = ["name"]


class ProcessingModuleForm(ConnectionCheckedForm):
    secret_fields = ("password",)

    class Meta:
        model = ProcessingModule
        fields = "__all__"
        help_texts = {
            "url": _("The full URL of the control panel, e.g. https://panel.example.com:1500/ispmgr"),
            "username": _(
                "An ISPmanager user with Admin permissions: billing uses it to create, suspend and delete "
                "client accounts. ISPmanager Business needs Admin credentials; Reseller credentials do not work."
            ),
        }

    @staticmethod
    def check_panel(instance):
        return module_check_connection(module=instance, save=False)


@admin.register(ProcessingModule)
class ProcessingModuleAdmin(PanelProbeAdminMixin, ConnectionCheckedAdmin):
    form = ProcessingModuleForm
    list_display = [
        "name",
        "product_type",
        "kind",
        "url",
        "data_center",
        "is_enabled",
        "edition",
        "check_ok",
        "check_message",
        "checked_at",
    ]
    list_filter = ["product_type", "kind", "data_center", "is_enabled", "edition"]
    list_select_related = ["data_center"]
    search_fields = ["name", "url"]
    readonly_fields = ["edition", "caller_level", "checked_at", "check_ok", "check_message"]
    fieldsets = [
        (None, {"fields": ["product_type", "kind"]}),
        (_("Integration"), {"fields": ["url", "username", "password", "verify_tls", "ca_certificate"]}),
        (_("Internal"), {"fields": ["data_center", "name", "department", "ipmanager", "is_enabled"]}),
        (_("Connection check"), {"fields": ["edition", "caller_level", "checked_at", "check_ok", "check_message"]}),
    ]

    actions = [
        *ConnectionCheckedAdmin.actions,
        "probe_panel",
        bulk_action(
            "enable",
            _("Enable: sell its tariffs and run its waiting operations"),
            lambda module, user: module_enable(module=module, enabled=True),
            ngettext_lazy("%(count)d module enabled.", "%(count)d modules enabled.", "count"),
        ),
        bulk_action(
            "disable",
            _("Disable: stop selling its tariffs and hold its operations"),
            lambda module, user: module_enable(module=module, enabled=False),
            ngettext_lazy("%(count)d module disabled.", "%(count)d modules disabled.", "count"),
        ),
    ]

    @staticmethod
    def check_panel(obj):
        return module_check_connection(module=obj)

    @staticmethod
    def probe(obj):
        return module_probe(module=obj, timeout=settings.PANEL_CHECK_TIMEOUT)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        # Switched on in the form: what waited for the module runs now (the actions do it in module_enable).
        if change and "is_enabled" in form.changed_data and obj.is_enabled and (resumed := module_operations_resume(module=obj)):
            message = ngettext("%(count)d waiting operation runs again.", "%(count)d waiting operations run again.", resumed)
            self.message_user(request, message % {"count": resumed}, messages.INFO)


class OperationAttemptInline(ReadOnlyMixin, admin.TabularInline):
    model = OperationAttempt
    fields = ["number", "worker", "started_at", "heartbeat_at", "lease_until", "finished_at", "duration", "outcome", "error"]
    readonly_fields = fields
    extra = 0


@admin.register(Operation)
class OperationAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "service",
        "action",
        "status",
        "waiting",
        "attempts",
        "next_attempt_at",
        "last_error",
        "requested_by",
        "created_at",
        "resolved_at",
    ]
    list_filter = [
        "status",
        "action",
        ("resolved_at", admin.EmptyFieldListFilter),
        "service__tariff__processing_module",
        "service__tariff__product_type",
    ]
    list_select_related = ["service__tariff__processing_module", "requested_by"]
    search_fields = ["=service__id", "service__panel_username", "service__domain", "last_error"]
    date_hierarchy = "created_at"
    actions = [
        bulk_action(
            "retry",
            _("Retry"),
            lambda operation, user: operation_retry(operation=operation, by=user),
            ngettext_lazy("%(count)d operation queued again.", "%(count)d operations queued again.", "count"),
        ),
        bulk_action(
            "mark_resolved",
            _("Mark resolved"),
            lambda operation, user: operation_resolve(operation=operation, by=user),
            ngettext_lazy("%(count)d operation marked resolved.", "%(count)d operations marked resolved.", "count"),
        ),
    ]
    exclude = ["secret"]
    inlines = [OperationAttemptInline]

    @admin.display(description=_("why it waits"))
    def waiting(self, obj):
        return obj.waiting_reason

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_readonly_fields(self, request, obj=None):
        # The record of what happened is not edited; staff act on it with Retry and Mark resolved.
        return [field.name for field in self.model._meta.fields if field.name != "secret"]


@admin.register(FailedOperation)
class FailedOperationAdmin(OperationAdmin):
    list_display = ["id", "service", "action", "attempts", "why", "requested_by", "finished_at"]
    list_filter = ["action", "service__tariff__processing_module", "service__tariff__product_type"]

    @admin.display(description=_("why"))
    def why(self, obj):
        return obj.waiting_reason or obj.last_error
