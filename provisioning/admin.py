from django.contrib import admin
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from billing.forms import WriteOnlySecretsForm
from provisioning.models import DataCenter, ProcessingModule


@admin.register(DataCenter)
class DataCenterAdmin(admin.ModelAdmin):
    list_display = ["name"]
    search_fields = ["name"]


class ProcessingModuleForm(WriteOnlySecretsForm):
    secret_fields = ("password",)

    class Meta:
        model = ProcessingModule
        fields = "__all__"


@admin.register(ProcessingModule)
class ProcessingModuleAdmin(SimpleHistoryAdmin):
    form = ProcessingModuleForm
    list_display = ["name", "product_type", "kind", "url", "data_center", "is_enabled", "edition", "check_ok", "checked_at"]
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
