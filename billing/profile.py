"""The client's Profile page: billing details, the login email and the password, each a form of its own."""

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model, update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from billing.forms import ConfirmPasswordForm, LimitedPasswordChangeForm, add_service_errors
from billing.models import Client
from billing.selectors import client_of
from billing.services import email_login


class BillingDetailsForm(forms.ModelForm):
    """What the next documents print as the buyer (issued ones keep what they were issued with)."""

    class Meta:
        model = Client
        fields = ["name", "email", "address", "tax_id"]
        widgets = {"address": forms.Textarea(attrs={"rows": 3})}


class EmailChangeForm(ConfirmPasswordForm):
    """A new login email, confirmed with the current password (counted by the login limits, as "Show password" is)."""

    # The email is the login: User.username holds 150 characters.
    email = forms.EmailField(label=gettext_lazy("New email"), max_length=150, help_text=gettext_lazy("You log in with it."))
    field_order = ["email", "password"]


@transaction.atomic
def user_email_change(*, user, client: Client, email: str) -> None:
    """Change the login email as client_register stores it; the contact email follows when it was the login."""
    email = email_login(email)
    taken = ValidationError({"email": _("An account with this email already exists.")})
    if get_user_model().objects.filter(username__iexact=email).exclude(pk=user.pk).exists():
        raise taken
    old = user.username
    user.username = user.email = email
    try:
        with transaction.atomic():
            user.save(update_fields=["username", "email"])
    except IntegrityError:
        raise taken from None  # taken at the same moment by another request
    if email_login(client.email) == old:
        Client.objects.filter(pk=client.pk).update(email=email)


@login_required
def profile(request):
    client = client_of(request.user)
    sent = request.POST.get("form") if request.method == "POST" else None
    data = lambda name: request.POST if sent == name else None  # noqa: E731 - only the submitted form is bound
    details = BillingDetailsForm(data("details"), instance=client, prefix="details")
    email = EmailChangeForm(data("email"), request=request, prefix="email", initial={"email": request.user.email})
    password = LimitedPasswordChangeForm(request.user, data("password"), request=request, prefix="password")
    if sent == "details" and details.is_valid():
        details.save()
        messages.success(request, _("Your billing details are saved. Documents issued from now on show them."))
        return redirect("profile")
    if sent == "email" and email.is_valid():
        try:
            user_email_change(user=request.user, client=client, email=email.cleaned_data["email"])
        except ValidationError as error:
            add_service_errors(email, error)
        else:
            messages.success(request, _("Your email is changed: log in with %(email)s from now on.") % {"email": request.user.email})
            return redirect("profile")
    if sent == "password" and password.is_valid():
        password.save()
        update_session_auth_hash(request, password.user)  # this session stays logged in
        messages.success(request, _("Your password is changed."))
        return redirect("profile")
    return render(request, "account/profile.html", {"details": details, "email": email, "password": password})
