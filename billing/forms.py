"""Form pieces the admin forms of every app share."""

import re
from datetime import datetime
from decimal import Decimal

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm, PasswordChangeForm
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from billing.choices import BillingPeriod, ProductType, ResourceKind
from billing.constants import QUANTITY_MAX
from billing.login_limits import password_confirm
from billing.money import money_format
from billing.services import MAX_RENEW_PERIODS, email_login


def add_service_errors(form, error: ValidationError) -> None:
    """Put a service's errors on the form: on their field when the form has it, on top otherwise."""
    for field, errors in getattr(error, "message_dict", {None: error.messages}).items():
        form.add_error(field if field in form.fields else None, errors)


class NameListField(forms.CharField):
    """A list of names typed as one line, separated by commas or spaces."""

    def prepare_value(self, value):
        return ", ".join(value) if isinstance(value, list) else value

    def to_python(self, value):
        return [name for name in re.split(r"[\s,;]+", super().to_python(value) or "") if name]


class RegistrationForm(forms.Form):
    # The email becomes the login: User.username holds 150 characters.
    email = forms.EmailField(label=_("Email"), max_length=150, help_text=_("You log in with it."))
    name = forms.CharField(label=_("Name or company"), max_length=200)
    password = forms.CharField(label=_("Password"), strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))

    def clean(self):
        cleaned = super().clean()
        email, password = cleaned.get("email"), cleaned.get("password")
        if password:
            # With the would-be user, so that a password too close to the email is refused too.
            user = get_user_model()(username=email or "", email=email or "", first_name=cleaned.get("name", ""))
            try:
                validate_password(password, user)
            except forms.ValidationError as error:
                self.add_error("password", error)
        return cleaned


class OrderForm(forms.Form):
    """The order form of one tariff: a field per resource, named by its kind, plus period and domain."""

    period = forms.TypedChoiceField(label=_("Billing period"), coerce=int)
    domain = forms.CharField(label=_("Domain"), max_length=253, required=False)

    def __init__(self, *args, tariff, **kwargs):
        super().__init__(*args, **kwargs)
        self.tariff = tariff
        self.fields["period"].choices = [(price.period, price.get_period_display()) for price in tariff.prices.all()]
        if tariff.product_type == ProductType.VHOST:
            self.fields["domain"].required = True
            self.fields["domain"].help_text = _("The site's domain, e.g. example.com.")
        else:
            del self.fields["domain"]  # an FTP storage account has no site: the panel is given no domain
        for resource in tariff.resources.all():
            if resource.kind == ResourceKind.DEDICATED_IPV4 and not (
                tariff.allow_dedicated_ip and tariff.processing_module.edition != "lite"
            ):
                continue
            field = forms.IntegerField(
                label=resource.get_kind_display(),
                initial=resource.included,
                min_value=0,
                max_value=QUANTITY_MAX,
                help_text=_("%(included)d included; each extra %(price)s a month")
                % {"included": resource.included, "price": money_format(resource.unit_price, tariff.currency)},
            )
            # The browser's hint; order_place enforces the same limits.
            field.widget.attrs["min"] = resource.included
            if resource.max_quantity is not None:
                field.widget.attrs["max"] = resource.max_quantity
            self.fields[resource.kind] = field

    @property
    def resource_fields(self):
        return [self[kind] for kind in self.fields if kind not in ("period", "domain")]

    def resources(self) -> dict[str, int]:
        return {kind: self.cleaned_data[kind] for kind in self.fields if kind not in ("period", "domain", ResourceKind.DEDICATED_IPV4)}


class TopUpForm(forms.Form):
    amount = forms.DecimalField(label=_("Amount"), min_value=Decimal("1.00"), max_digits=12, decimal_places=2)
    gateway = forms.ChoiceField(label=_("Payment method"), widget=forms.RadioSelect)

    def __init__(self, *args, gateways, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["gateway"].choices = [(gateway.code, gateway.name) for gateway in gateways]
        if gateways:
            self.fields["gateway"].initial = gateways[0].code


class LoginForm(AuthenticationForm):
    """Clients log in with their email in any case: it is their login in lower case."""

    def clean_username(self):
        username = self.cleaned_data["username"]
        return email_login(username) if "@" in username else username


class ConfirmPasswordForm(forms.Form):
    password = forms.CharField(
        label=_("Your password"), strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "current-password"})
    )

    def __init__(self, *args, request, **kwargs):
        super().__init__(*args, **kwargs)
        self.request = request

    def clean_password(self):
        # Counted by the login limits: a stolen session cannot guess the password here without limit.
        if not password_confirm(request=self.request, password=self.cleaned_data["password"]):
            raise forms.ValidationError(_("That is not your password."))
        return self.cleaned_data["password"]


class LimitedPasswordChangeForm(PasswordChangeForm):
    """Changing the password: the old one is checked through the login limits, as "Show password" is."""

    def __init__(self, user, *args, request, **kwargs):
        super().__init__(user, *args, **kwargs)
        self.request = request

    def clean_old_password(self):
        if not password_confirm(request=self.request, password=self.cleaned_data["old_password"]):
            raise forms.ValidationError(self.error_messages["password_incorrect"], code="password_incorrect")
        return self.cleaned_data["old_password"]


def renewal_length(period: int, count: int) -> str:
    """`count` periods of `period` months in the tariff's own unit: "3 months", "2 quarters (6 months)", "1 year"."""
    months = period * count
    if period % 12 == 0:
        years = months // 12
        return ngettext("%(count)d year", "%(count)d years", years) % {"count": years}
    in_months = ngettext("%(count)d month", "%(count)d months", months) % {"count": months}
    if period == BillingPeriod.QUARTER:
        unit = ngettext("%(count)d quarter (%(months)s)", "%(count)d quarters (%(months)s)", count)
    elif period == BillingPeriod.HALF_YEAR:
        unit = ngettext("%(count)d half-year (%(months)s)", "%(count)d half-years (%(months)s)", count)
    else:
        return in_months
    return unit % {"count": count, "months": in_months}


class RenewForm(forms.Form):
    """Renew Now: how many periods ahead, and the paid-until the client saw (a repeated submit then charges nothing)."""

    periods = forms.TypedChoiceField(label=_("Renew for"), coerce=int)
    # An ISO timestamp written by the service page; anything else is refused, never guessed at.
    expires = forms.Field(widget=forms.HiddenInput)
    EXPIRES_INVALID = _("The renewal form did not carry a valid paid-until date: open the service page and renew from there.")

    def __init__(self, *args, service, currency, **kwargs):
        kwargs.setdefault("initial", {"periods": 1, "expires": service.expires_at.isoformat() if service.expires_at else ""})
        super().__init__(*args, **kwargs)
        self.fields["periods"].choices = [
            (count, f"{renewal_length(service.period, count)} — {money_format(service.price * count, currency)}")
            for count in range(1, MAX_RENEW_PERIODS + 1)
        ]
        wrong_periods = _("Choose how long to renew for: 1 to %(max)d periods.") % {"max": MAX_RENEW_PERIODS}
        self.fields["periods"].error_messages |= {"required": wrong_periods, "invalid_choice": wrong_periods}
        self.fields["expires"].error_messages["required"] = self.EXPIRES_INVALID

    def clean_expires(self) -> datetime:
        try:
            moment = datetime.fromisoformat(self.cleaned_data["expires"])
        except ValueError:
            moment = None
        if moment is None or moment.tzinfo is None:
            raise ValidationError(self.EXPIRES_INVALID, code="expires")
        return moment


class ServiceChangeForm(forms.Form):
    """Change plan or resources: a tariff and resource totals; the price per period the client saw makes a repeat harmless.

    Only what the client changed is passed on: a resource left at its current amount keeps it (raised to
    what the new tariff includes), and one the chosen tariff does not have is dropped.
    """

    tariff = forms.ModelChoiceField(label=_("Tariff"), queryset=None, empty_label=None)
    price = forms.DecimalField(widget=forms.HiddenInput, max_digits=12, decimal_places=2, required=False)

    def __init__(self, *args, service, **kwargs):
        from billing.changes import tariff_choices  # builds on billing.services, as this module does
        from billing.models import TariffPlan

        self.service = service
        kwargs.setdefault("initial", {"tariff": service.tariff_id, "price": service.price})
        super().__init__(*args, **kwargs)
        self.tariffs = [service.tariff, *tariff_choices(service).prefetch_related("resources")]
        self.fields["tariff"].queryset = TariffPlan.objects.filter(pk__in=[tariff.pk for tariff in self.tariffs])
        self.current = dict(service.resources.values_list("kind", "quantity"))
        kinds = {resource.kind for tariff in self.tariffs for resource in tariff.resources.all()}
        for kind in sorted(kinds):
            self.fields[kind] = forms.IntegerField(
                label=ResourceKind(kind).label, required=False, min_value=0, max_value=QUANTITY_MAX, initial=self.current.get(kind)
            )

    def quantities(self) -> dict:
        offered = {resource.kind for resource in self.cleaned_data["tariff"].resources.all()}
        return {
            kind: value
            for kind, value in self.cleaned_data.items()
            if kind in offered and value is not None and value != self.current.get(kind)
        }
