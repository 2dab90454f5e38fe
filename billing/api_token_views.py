"""The client's API tokens page: their own tokens listed, a new one made (its secret shown once), one revoked."""

from datetime import timedelta

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from billing.api.models import ApiScope
from billing.api.tokens import live_tokens, token_create, token_revoke
from billing.forms import ConfirmPasswordForm, add_service_errors

TOKENS_PER_PAGE = 50
NEVER = "never"
EXPIRY_CHOICES = [
    ("30", gettext_lazy("In 30 days")),
    ("90", gettext_lazy("In 90 days")),
    ("365", gettext_lazy("In a year")),
    (NEVER, gettext_lazy("Never")),
]


class ApiTokenForm(ConfirmPasswordForm):
    """A new token, confirmed with the account password: a stolen session alone cannot mint a lasting key."""

    name = forms.CharField(label=gettext_lazy("Name"), max_length=100, help_text=gettext_lazy("What will use it, e.g. “our website”."))
    scopes = forms.MultipleChoiceField(
        label=gettext_lazy("Access"),
        choices=ApiScope.choices,
        initial=[ApiScope.READ],
        widget=forms.CheckboxSelectMultiple,
        help_text=gettext_lazy("Every token can read; the others add to reading."),
    )
    expires = forms.ChoiceField(label=gettext_lazy("Expires"), choices=EXPIRY_CHOICES, initial="90")
    field_order = ["name", "scopes", "expires", "password"]

    def expires_at(self):
        days = self.cleaned_data["expires"]
        return None if days == NEVER else timezone.now() + timedelta(days=int(days))


@login_required
def api_tokens(request):
    form = ApiTokenForm(request.POST if request.method == "POST" else None, request=request)
    created = plaintext = None
    if form.is_valid():
        try:
            created, plaintext = token_create(
                user=request.user, name=form.cleaned_data["name"], scopes=form.cleaned_data["scopes"], expires_at=form.expires_at()
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            form = ApiTokenForm(request=request)
    page = Paginator(request.user.api_tokens.all(), TOKENS_PER_PAGE).get_page(request.GET.get("page"))
    labels = dict(ApiScope.choices)
    page.object_list = list(page.object_list)
    for token in page.object_list:
        token.scope_names = ", ".join(str(labels.get(scope, scope)) for scope in token.scopes)
    context = {
        # The secret is in this answer only (never stored, never redirected to): the page says to copy it now.
        "created": created,
        "plaintext": plaintext,
        "form": form,
        "page": page,
        "now": timezone.now(),
        "live_count": live_tokens(user=request.user).count(),
        "limit": settings.API_TOKENS_PER_USER_MAX,
    }
    return render(request, "account/api_tokens.html", context)


@login_required
def api_token_revoke(request, token_id: int):
    """Revoking asks for a "yes" first; another user's token is a 404, as a missing one is."""
    token = get_object_or_404(request.user.api_tokens, pk=token_id)
    if token.revoked_at is not None:
        messages.info(request, _("The token “%(name)s” was already revoked.") % {"name": token.name})
        return redirect("api_tokens")
    if request.method == "POST" and request.POST.get("confirm") == "yes":
        token_revoke(token=token)
        messages.success(request, _("The token “%(name)s” is revoked: it no longer works.") % {"name": token.name})
        return redirect("api_tokens")
    return render(request, "account/api_token_revoke.html", {"token": token})
