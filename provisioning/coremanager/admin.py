"""Admin pieces for panels whose connection is checked when they are saved (modules, integrations)."""

from django import forms
from django.contrib import admin, messages
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from billing.secret_fields import is_unreadable
from provisioning.coremanager.probe import Status, stored_report


class WriteOnlySecretsForm(forms.ModelForm):
    """A model form whose `secret_fields` are never rendered back; left blank they keep the stored value."""

    secret_fields: tuple[str, ...] = ()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in self.secret_fields:
            field = self.fields[name]
            field.widget = forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"})
            stored = getattr(self.instance, name) if self.instance.pk else None
            if stored:
                field.required = False
                field.help_text = (
                    _("Stored, but the configured encryption keys cannot decrypt it: enter it again, or fix FIELD_ENCRYPTION_KEYS.")
                    if is_unreadable(stored)
                    else _("Stored. Leave blank to keep it, or enter a new one.")
                )

    def clean(self):
        cleaned = super().clean()
        for name in self.secret_fields:
            if not cleaned.get(name) and self.instance.pk:
                # Left out of what the form applies: the instance keeps what it read, saved back as the same ciphertext.
                cleaned.pop(name, None)
        return cleaned

    def get_initial_for_field(self, field, field_name):
        if field_name in self.secret_fields:
            return None
        return super().get_initial_for_field(field, field_name)


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


class PanelProbeAdminMixin:
    """Offers "Probe the panel" on the list and shows the last compatibility report, with its date, on the change page.

    `probe(obj)` probes one panel (read-only calls) and stores the report on it. List "probe_panel" in `actions`.
    """

    @staticmethod
    def probe(obj):
        raise NotImplementedError

    @admin.action(description=_("Probe the panel"))
    def probe_panel(self, request, queryset):
        for obj in queryset:
            report = self.probe(obj)
            level = messages.ERROR if not report.ok else messages.WARNING if report.count(Status.DIFFERENT) else messages.SUCCESS
            url = reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])
            self.message_user(request, format_html('{}: {} <a href="{}">{}</a>', obj, report.summary, url, _("See the report.")), level)

    @admin.display(description=_("compatibility report"))
    def compatibility_report(self, obj):
        return render_to_string("admin/panel_probe_report.html", {"report": stored_report(obj)})

    def get_readonly_fields(self, request, obj=None):
        return [*super().get_readonly_fields(request, obj), "probed_at", "compatibility_report"]

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None:
            return fieldsets
        return [*fieldsets, (_("Compatibility report (panel_probe)"), {"fields": ["probed_at", "compatibility_report"]})]
