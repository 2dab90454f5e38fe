"""Staff configure webhook endpoints and watch events and their deliveries; the only action on a delivery is "Redeliver"."""

import json

from django import forms
from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext_lazy
from django.utils.translation import gettext_lazy as _

from billing.admin_actions import ReadOnlyMixin, bulk_action
from billing.webhooks.addresses import webhook_url_check
from billing.webhooks.delivery import delivery_redeliver, endpoint_secret_rotate, secret_generate
from billing.webhooks.models import EventType, WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent


class WebhookEndpointForm(forms.ModelForm):
    url = forms.URLField(label=_("URL"), max_length=500, assume_scheme="https")
    event_types = forms.MultipleChoiceField(label=_("event types"), choices=EventType.choices, widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = WebhookEndpoint
        fields = ["url", "event_types", "enabled", "description"]

    def clean_url(self):
        url = self.cleaned_data["url"]
        webhook_url_check(url)
        return url


def _secret_shown_once(secret: str) -> str:
    return gettext("New signing secret, shown only now (copy it to the receiver): %(secret)s") % {"secret": secret}


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    form = WebhookEndpointForm
    list_display = ["url", "enabled", "types", "description", "created_at"]
    list_filter = ["enabled"]
    search_fields = ["url", "description"]
    actions = [
        bulk_action(
            "rotate_secret",
            _("Rotate secret"),
            lambda endpoint, user: endpoint_secret_rotate(endpoint=endpoint),
            ngettext_lazy("%(count)d endpoint has a new secret.", "%(count)d endpoints have a new secret.", "count"),
            _secret_shown_once,
        )
    ]

    @admin.display(description=_("event types"))
    def types(self, obj):
        labels = dict(EventType.choices)
        return ", ".join(str(labels.get(code, code)) for code in obj.event_types)

    def save_model(self, request, obj, form, change):
        if not change:  # the secret is made here and shown once; it is never on a form
            obj.secret = secret_generate()
        super().save_model(request, obj, form, change)
        if not change:
            self.message_user(request, _secret_shown_once(str(obj.secret)), messages.WARNING)


class DeliveryInline(ReadOnlyMixin, admin.TabularInline):
    model = WebhookDelivery
    extra = 0
    fields = readonly_fields = ["link", "endpoint", "status", "attempts", "next_attempt_at"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("endpoint")

    @admin.display(description=_("delivery"))
    def link(self, obj):
        return format_html('<a href="{}">#{}</a>', reverse("admin:billing_webhookdelivery_change", args=[obj.pk]), obj.pk)


def _pretty(data) -> str:
    return format_html("<pre>{}</pre>", json.dumps(data, indent=2, ensure_ascii=False))


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["event_id", "type", "created_at"]
    list_filter = ["type"]
    search_fields = ["event_id"]
    date_hierarchy = "created_at"
    fields = readonly_fields = ["event_id", "type", "created_at", "payload"]
    inlines = [DeliveryInline]

    @admin.display(description=_("data"))
    def payload(self, obj):
        return _pretty(obj.data)


class AttemptInline(ReadOnlyMixin, admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    fields = readonly_fields = ["started_at", "duration_ms", "response_status", "reason", "succeeded"]

    @admin.display(description=_("error"))
    def reason(self, obj):
        return gettext(obj.error) if obj.error else ""


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ["pk", "event", "endpoint", "status", "attempts", "next_attempt_at", "created_at"]
    list_filter = ["status", "event__type", "endpoint"]
    search_fields = ["event__event_id", "endpoint__url"]
    list_select_related = ["event", "endpoint"]
    fields = readonly_fields = ["event_link", "endpoint", "status", "attempts", "next_attempt_at", "created_at", "payload"]
    inlines = [AttemptInline]
    actions = [
        bulk_action(
            "redeliver",
            _("Redeliver"),
            lambda delivery, user: delivery_redeliver(delivery=delivery),
            ngettext_lazy("%(count)d delivery queued again.", "%(count)d deliveries queued again.", "count"),
        )
    ]

    @admin.display(description=_("event"))
    def event_link(self, obj):
        return format_html('<a href="{}">{}</a>', reverse("admin:billing_webhookevent_change", args=[obj.event_id]), obj.event)

    @admin.display(description=_("data"))
    def payload(self, obj):
        return _pretty(obj.event.data)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("event", "endpoint")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        # Changing deliveries means redelivering them from the list; a delivery itself is never edited.
        return obj is None and super().has_change_permission(request)

    def has_delete_permission(self, request, obj=None):
        return False
