"""Staff make API tokens for any user, look at them and revoke them.

The secret is shown once, in the message that follows its creation; a token's page shows its prefix, never
the secret or its hash. Nothing about a made token changes but its revocation, so its scopes are never widened.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.admin.widgets import AdminSplitDateTime
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q
from django.http import HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from billing.admin_actions import bulk_action
from billing.api.models import ApiScope, ApiToken
from billing.api.tokens import token_check, token_create, token_is_live, token_revoke
from billing.forms import add_service_errors
from billing.services import NothingToDo


def scope_labels(scopes) -> str:
    labels = dict(ApiScope.choices)
    return ", ".join(str(labels.get(scope, scope)) for scope in scopes)


def token_status(token: ApiToken) -> str:
    if token.revoked_at is not None:
        return _("revoked")
    return _("live") if token_is_live(token) else _("expired")


class ApiTokenStatusFilter(admin.SimpleListFilter):
    title = _("status")
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("live", _("live")), ("revoked", _("revoked")), ("expired", _("expired"))]

    def queryset(self, request, queryset):
        now, value = timezone.now(), self.value()
        if value == "live":
            return queryset.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now), revoked_at__isnull=True)
        if value == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        if value == "expired":
            return queryset.filter(revoked_at__isnull=True, expires_at__lte=now)
        return queryset


class ApiTokenCreateForm(forms.ModelForm):
    """A new token: the checks of token_create show here as form errors; token_create itself runs in save_model."""

    scopes = forms.MultipleChoiceField(
        label=_("scopes"),
        choices=ApiScope.choices,
        initial=[ApiScope.READ],
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Read is always included. A staff user's token may act on every client."),
    )
    expires_at = forms.SplitDateTimeField(label=_("expires at"), widget=AdminSplitDateTime, required=False, help_text=_("Empty: never."))

    class Meta:
        model = ApiToken
        fields = ["user", "name", "scopes", "expires_at"]

    maker = None  # the staff user making the token: ApiTokenAdmin.get_form sets it

    def _post_clean(self):
        super()._post_clean()
        if self.errors:
            return
        owner = self.cleaned_data["user"]
        # A token acts with its owner's permissions: one for another staff user would give the maker theirs.
        if (owner.is_staff or owner.is_superuser) and owner != self.maker and not getattr(self.maker, "is_superuser", False):
            self.add_error("user", _("Only a superuser may make a token for another staff user: it would act with their permissions."))
            return
        # Panel passwords are shown only to their client, who asks for them with the account password: a
        # token made by someone else, whose secret that person sees, may not read them.
        if ApiScope.SECRETS in self.cleaned_data["scopes"] and owner != self.maker:
            self.add_error("scopes", _("Only the user may make a token that shows panel passwords, in the client area."))
            return
        try:
            # The admin's add view is one transaction: the user's row stays locked until save_model has made the token.
            token_check(user=self.cleaned_data["user"], expires_at=self.cleaned_data["expires_at"])
        except ValidationError as error:
            add_service_errors(self, error)


def _revoke(token, user):
    if token.revoked_at is not None:
        raise NothingToDo(_("Already revoked."))
    return token_revoke(token=token)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "user", "prefix", "scope_list", "last_used_at", "expires_at", "status"]
    list_filter = [ApiTokenStatusFilter, "user__is_staff", "created_at"]
    list_select_related = ["user"]
    search_fields = ["name", "prefix", "user__username", "user__email"]
    autocomplete_fields = ["user"]
    actions = [
        bulk_action(
            "revoke",
            _("Revoke the selected API tokens"),
            _revoke,
            _("%(count)d API tokens revoked: they no longer authenticate."),
        )
    ]
    # A made token is looked at, never edited; what it may do is fixed when it is made.
    shown_fields = ["user", "name", "prefix", "scope_list", "status", "created_at", "last_used_at", "expires_at", "revoked_at"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["form"] = forms.ModelForm if obj else ApiTokenCreateForm
        form = super().get_form(request, obj, change, **kwargs)
        form.maker = request.user  # the class is made afresh for each request
        return form

    def get_fields(self, request, obj=None):
        return self.shown_fields if obj else ["user", "name", "scopes", "expires_at"]

    def get_readonly_fields(self, request, obj=None):
        return self.shown_fields if obj else []

    @admin.display(description=_("scopes"))
    def scope_list(self, obj):
        return scope_labels(obj.scopes)

    @admin.display(description=_("status"))
    def status(self, obj):
        return token_status(obj)

    def save_model(self, request, obj, form, change):
        if change:
            return  # every field of a made token is read-only; revoking has its own action and button
        token, plaintext = token_create(
            user=form.cleaned_data["user"],
            name=form.cleaned_data["name"],
            scopes=form.cleaned_data["scopes"],
            expires_at=form.cleaned_data["expires_at"],
        )
        obj.pk = token.pk
        obj.refresh_from_db()
        notice = _("Copy the token of %(user)s now: it is shown only this once.") % {"user": token.user}
        self.message_user(request, format_html('{} <code class="api-token">{}</code>', notice, plaintext), messages.WARNING)

    def get_urls(self):
        revoke = path("<path:object_id>/revoke/", self.admin_site.admin_view(self.revoke_view), name="billing_apitoken_revoke")
        return [revoke, *super().get_urls()]

    @method_decorator(require_POST)
    def revoke_view(self, request, object_id):
        token = self.get_object(request, unquote(object_id))
        if token is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_change_permission(request, token):
            raise PermissionDenied
        if token.revoked_at is None:
            token_revoke(token=token)
            message = _("The API token %(token)s is revoked: it no longer authenticates.") % {"token": token}
            self.message_user(request, message, messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:billing_apitoken_change", args=[token.pk]))
