"""Admin pieces for panels whose connection is checked when they are saved (modules, integrations)."""

from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from billing.forms import WriteOnlySecretsForm


class ConnectionCheckedForm(WriteOnlySecretsForm):
    """Saving checks the connection: what the admin must fix is refused, an unreachable panel only warned about.

    `check_panel(instance)` runs the check without saving and returns a result with ok, message,
    warning and blocking.
    """

    @staticmethod
    def check_panel(instance):
        raise NotImplementedError

    def _post_clean(self):
        super()._post_clean()
        self.check_result = None
        if not self.errors:
            self.check_result = self.check_panel(self.instance)
            if self.check_result.blocking:
                self.add_error(None, _("Connection check failed: %(message)s") % {"message": self.check_result.message})


class ConnectionCheckedAdmin(SimpleHistoryAdmin):
    """Reports the check made on save, and offers "Check connection" on the list (`check_panel` saves the result)."""

    actions = ["check_connection"]

    @staticmethod
    def check_panel(obj):
        raise NotImplementedError

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        # Saving calls the panel (the connection check), which must not hold a database transaction
        # open (on SQLite that would lock out the worker). What is saved is one row and its history.
        return self._changeform_view(request, object_id, form_url, extra_context)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if form.check_result:
            self._report(request, obj, form.check_result)

    @admin.action(description=_("Check connection"))
    def check_connection(self, request, queryset):
        for obj in queryset:
            self._report(request, obj, self.check_panel(obj))

    def _report(self, request, obj, result):
        level = messages.SUCCESS if result.ok and not result.warning else messages.WARNING if result.ok else messages.ERROR
        self.message_user(request, f"{obj}: {result.message}", level)
