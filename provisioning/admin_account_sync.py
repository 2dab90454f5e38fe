"""The admin of account sync runs and their findings: read-only records, with staff's two actions on a finding."""

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy

from billing.admin_actions import ReadOnlyMixin, bulk_action
from provisioning.accounts_sync import finding_dismiss, finding_fix_queue
from provisioning.models import AccountSyncFinding, AccountSyncRun


@admin.register(AccountSyncRun)
class AccountSyncRunAdmin(ReadOnlyMixin, admin.ModelAdmin):
    # The counts of how it read (services, in flight, forms read, list only) are on the run's own page: the list stays readable.
    list_display = ["started_at", "module", "status", "dry_run", "accounts", "found", "queued", "findings_link", "message"]
    list_filter = ["status", "dry_run", "module"]
    list_select_related = ["module"]
    date_hierarchy = "started_at"

    @admin.display(description=_("findings"))
    def findings_link(self, obj):
        url = reverse("admin:provisioning_accountsyncfinding_changelist") + f"?run__id__exact={obj.pk}"
        return format_html('<a href="{}">{}</a>', url, _("findings"))


@admin.register(AccountSyncFinding)
class AccountSyncFindingAdmin(admin.ModelAdmin):
    list_display = ["kind", "login", "service", "details", "fix", "state", "operation", "run"]
    list_filter = ["kind", "state", "fix", "run__module"]
    list_select_related = ["run__module", "service__tariff", "operation"]
    search_fields = ["login", "=service__id"]
    actions = [
        bulk_action(
            "queue_fix",
            _("Queue the fix (resume, suspend or set limits, to match billing)"),
            lambda finding, user: finding_fix_queue(finding=finding, by=user),
            ngettext_lazy("%(count)d fix queued.", "%(count)d fixes queued.", "count"),
        ),
        bulk_action(
            "dismiss",
            _("Dismiss: known, leave it as it is"),
            lambda finding, user: finding_dismiss(finding=finding, by=user),
            ngettext_lazy("%(count)d finding dismissed.", "%(count)d findings dismissed.", "count"),
        ),
    ]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_readonly_fields(self, request, obj=None):
        # What a run found is not edited; staff act on it with the two actions.
        return [field.name for field in self.model._meta.fields]
