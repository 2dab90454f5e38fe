"""The public shop-window and the client area. Views validate input, call one service, render."""

import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpResponse, HttpResponseBadRequest, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse, translate_url
from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.functional import SimpleLazyObject
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from django.views.i18n import set_language

from billing.changes import service_change, service_change_quote
from billing.choices import PanelAction, PaymentStatus, ServiceStatus
from billing.forms import (
    ConfirmPasswordForm,
    LimitedPasswordChangeForm,
    LoginForm,
    OrderForm,
    RegistrationForm,
    RenewForm,
    ServiceChangeForm,
    TopUpForm,
    add_service_errors,
    renewal_length,
)
from billing.login_limits import login_lockout_clear
from billing.models import Client, TariffPlan
from billing.money import money_format
from billing.payments import GATEWAYS, enabled_gateways, payment_callback, payment_start
from billing.pricing import tariff_quote
from billing.secret_fields import is_unreadable
from billing.selectors import (
    client_amount_due,
    client_balance,
    client_of,
    client_payment,
    client_service,
    client_services,
    client_unpaid_service,
    client_unpaid_services,
    service_ftp_access,
    service_ip_addresses,
    service_renewal_quote,
    shop_tariffs,
)
from billing.services import (
    CONFIRMED_BY_CLIENT,
    InsufficientFunds,
    NothingToDo,
    client_register,
    order_place,
    service_auto_renew_set,
    service_client_actions,
    service_client_renew,
    service_client_renewable,
    service_client_request,
    service_pay,
)
from billing.shop_cache import shop_page, shop_sections, shop_window_key
from provisioning.coremanager.errors import ProvisioningError, TransientError
from provisioning.panel_login import panel_login_available, service_panel_login_url

REVEAL_SESSION_KEY = "panel_password_reveal_until"
ORDER_DRAFT_SESSION_KEY = "order_draft"
ORDER_DRAFT_MAX_LENGTH = 300  # longer than any valid value: a domain is at most 253 characters
# The client area warns when the balance will not cover what auto-renew charges this many days ahead.
DUE_BANNER_DAYS = 7


def shop(request):
    # The plans are read and rendered only when shop_window_key() has changed.
    sections = SimpleLazyObject(shop_sections)
    return shop_page(request, "shop/index.html", {"sections": sections, "shop_window_key": shop_window_key()})


def _price_data(tariff: TariffPlan) -> dict:
    """What order.js needs to show the same total as tariff_quote, in cents."""
    cents = lambda amount: int(amount * 100)  # noqa: E731 - a one-line conversion
    return {
        "prices": {str(price.period): cents(price.price) for price in tariff.prices.all()},
        "setupFee": cents(tariff.setup_fee),
        "resources": {r.kind: {"included": r.included, "unitPrice": cents(r.unit_price)} for r in tariff.resources.all()},
        "currency": tariff.currency,
    }


def _order_draft_keep(request, tariff: TariffPlan) -> None:
    """Remember what a visitor typed in the order form until it has signed up or logged in."""
    names = OrderForm(tariff=tariff).fields
    fields = {name: request.POST.get(name, "")[:ORDER_DRAFT_MAX_LENGTH] for name in names if name in request.POST}
    request.session[ORDER_DRAFT_SESSION_KEY] = {"tariff": tariff.pk, "fields": fields}


def _order_draft_take(request, tariff: TariffPlan) -> dict | None:
    """What the visitor typed in this tariff's form before signing up, once."""
    draft = request.session.get(ORDER_DRAFT_SESSION_KEY)
    if not isinstance(draft, dict) or draft.get("tariff") != tariff.pk:
        return None
    del request.session[ORDER_DRAFT_SESSION_KEY]
    return draft.get("fields")


def order(request, tariff_id: int):
    # Only what the shop-window shows can be ordered: a hidden or disabled tariff is a 404 here.
    tariff = get_object_or_404(shop_tariffs(), pk=tariff_id)
    if request.method == "POST" and not request.user.is_authenticated:
        # "Sign up to order" and "log in" send the form: its values come back filled in afterwards.
        _order_draft_keep(request, tariff)
        return redirect(f"{reverse('register' if request.POST.get('then') == 'register' else 'login')}?next={request.path}")
    initial = _order_draft_take(request, tariff) if request.method == "GET" and request.user.is_authenticated else None
    form = OrderForm(request.POST or None, tariff=tariff, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            service = order_place(
                client=client_of(request.user),
                user=request.user,
                tariff=tariff,
                period=form.cleaned_data["period"],
                domain=form.cleaned_data.get("domain", ""),
                resources=form.resources(),
                dedicated_ips=form.cleaned_data.get("dedicated_ipv4") or 0,
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, _("Order #%(id)d placed.") % {"id": service.pk})
            return redirect("service_detail", service_id=service.pk)
    first_price = tariff.prices.all()[0] if tariff.prices.all() else None
    quote = tariff_quote(tariff=tariff, tariff_price=first_price.price, period=first_price.period, quantities={}) if first_price else None
    return render(request, "shop/order.html", {"tariff": tariff, "form": form, "quote": quote, "price_data": _price_data(tariff)})


def register(request):
    if request.user.is_authenticated:
        return redirect("client_area")
    form = RegistrationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            client = client_register(
                email=form.cleaned_data["email"],
                name=form.cleaned_data["name"],
                password=form.cleaned_data["password"],
                language=translation.get_language() or settings.LANGUAGE_CODE,
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            login(request, client.users.get(), backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, _("Welcome! Top up your balance to order a service."))
            next_url = request.GET.get("next", "")
            safe = url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure())
            return redirect(next_url if safe else "client_area")
    return render(request, "registration/register.html", {"form": form})


class LoginView(auth_views.LoginView):
    """Logging in brings back the language the client chose."""

    authentication_form = LoginForm
    redirect_authenticated_user = True

    def form_valid(self, form):
        response = super().form_valid(form)
        client = form.get_user().clients.order_by("pk").first()
        if client:
            # translate_url reads the address in the current language: translate first, then switch.
            response["Location"] = translate_url(response["Location"], client.language)
            translation.activate(client.language)
            response.set_cookie(settings.LANGUAGE_COOKIE_NAME, client.language)
        return response


class PasswordChangeView(auth_views.PasswordChangeView):
    form_class = LimitedPasswordChangeForm

    def get_form_kwargs(self):
        return super().get_form_kwargs() | {"request": self.request}


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    """Setting a new password through the emailed link also lifts the lockout of that login."""

    def form_valid(self, form):
        response = super().form_valid(form)
        login_lockout_clear(username=form.user.get_username())
        return response


@require_POST
def language_switch(request):
    """Django's language switch, remembered on the client account of a logged-in user."""
    response = set_language(request)
    language = request.POST.get("language")
    if request.user.is_authenticated and language in dict(settings.LANGUAGES):
        Client.objects.filter(users=request.user).update(language=language)
    return response


@login_required
def client_area(request):
    client = client_of(request.user)
    return render(
        request,
        "account/dashboard.html",
        {
            "client": client,
            "balance": client_balance(client=client),
            "due": client_amount_due(client=client, days=DUE_BANNER_DAYS),
            "due_days": DUE_BANNER_DAYS,
            "services": client_services(client=client).exclude(status=ServiceStatus.DELETED),
            "entries": client.ledger_entries.all()[:5],
        },
    )


@login_required
def balance(request):
    client = client_of(request.user)
    gateways = enabled_gateways()
    # After "not enough money" the missing amount arrives in the address, ready to pay.
    form = TopUpForm(request.POST or None, gateways=gateways, initial={"amount": request.GET.get("amount")})
    # ... and the order it was for, so that the payment's page offers to pay it.
    waiting = client_unpaid_service(client=client, service_id=request.GET.get("service"))
    if request.method == "POST" and form.is_valid():
        try:
            payment, start = payment_start(
                client=client, gateway_code=form.cleaned_data["gateway"], amount=form.cleaned_data["amount"], by=request.user
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            # A card gateway takes the client to its own payment page; the others show their instructions here.
            after = reverse("payment_detail", args=[payment.pk]) + (f"?service={waiting.pk}" if waiting else "")
            return redirect(start.redirect_url or after)
    page = Paginator(client.ledger_entries.select_related("document"), 50).get_page(request.GET.get("page"))
    return render(
        request,
        "account/balance.html",
        {
            "client": client,
            "balance": client_balance(client=client),
            "form": form,
            "page": page,
            "unpaid": client_unpaid_services(client=client),
        },
    )


@login_required
def payment_detail(request, payment_id: int):
    client = client_of(request.user)
    payment = client_payment(client=client, payment_id=payment_id)
    instructions = GATEWAYS[payment.gateway].instructions(payment) if payment.status == PaymentStatus.PENDING else ""
    # The order this top-up was for, while it still waits for payment (only one of the client's own).
    waiting = client_unpaid_service(client=client, service_id=request.GET.get("service"))
    return render(
        request,
        "account/payment.html",
        {"payment": payment, "instructions": instructions, "waiting": waiting, "balance": client_balance(client=client)},
    )


@login_required
def orders(request):
    client = client_of(request.user)
    return render(request, "account/orders.html", {"services": client_services(client=client), "payments": client.payments.all()[:100]})


@login_required
def service_detail(request, service_id: int):
    client = client_of(request.user)
    service = client_service(client=client, service_id=service_id)
    revealed = time.time() < request.session.get(REVEAL_SESSION_KEY, 0)
    form = ConfirmPasswordForm(request.POST or None, request=request)
    show_password = False
    if request.method == "POST" and form.is_valid():
        request.session[REVEAL_SESSION_KEY] = time.time() + settings.PASSWORD_REVEAL_SECONDS
        show_password = True
    elif request.GET.get("show") and revealed:
        show_password = True
    return render(
        request,
        "account/service.html",
        {
            "service": service,
            "balance": client_balance(client=client),
            "due": client_amount_due(client=client, days=DUE_BANNER_DAYS),
            "due_days": DUE_BANNER_DAYS,
            "renew_form": RenewForm(service=service, currency=client.currency),
            "currency": client.currency,  # what the balance, and so every charge, is counted in
            "form": form,
            # A deleted account is gone from the panel: its password opens nothing.
            "show_password": show_password and bool(service.panel_password) and service.status != ServiceStatus.DELETED,
            # Stored, but the configured keys cannot decrypt it: say so instead of asking to reveal it.
            "password_unreadable": is_unreadable(service.panel_password),
            "operations": service.operations.order_by("-pk")[:10],
            "can": service_client_actions(service),
            "can_open_panel": panel_login_available(service),
            "addresses": service_ip_addresses(service=service),
            "ftp": service_ftp_access(service=service),
        },
    )


@login_required
@require_POST
def service_pay_view(request, service_id: int):
    service = client_service(client=client_of(request.user), service_id=service_id)
    try:
        service_pay(service=service, by=request.user)
    except InsufficientFunds as error:
        messages.error(request, error.messages[0])
        return redirect(f"{reverse('balance')}?amount={error.missing}&service={service.pk}")
    except NothingToDo as error:
        messages.info(request, " ".join(error.messages))
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, _("Paid. Your account is being created: this takes a few seconds."))
    return redirect("service_detail", service_id=service.pk)


@login_required
@require_POST
def service_panel_login(request, service_id: int):
    """Open control panel: a one-time key made now and the browser sent to the panel with it; a POST, never a link to share."""
    service = client_service(client=client_of(request.user), service_id=service_id)
    try:
        url = service_panel_login_url(service=service, by=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    except TransientError:
        messages.error(request, _("The control panel did not answer; try again in a minute."))
    except ProvisioningError:  # refused by the panel, or the account at the login is no longer this service's (ForeignAccount)
        messages.error(request, _("The control panel refused to open your account. Please contact support."))
    else:
        return HttpResponseRedirect(url)
    return redirect("service_detail", service_id=service.pk)


def _requested_message(service, action: str) -> str:
    """What the client is told once its request is accepted: only what has really happened yet."""
    if service.status == ServiceStatus.DELETED:
        return _("Order #%(id)d cancelled: nothing was charged.") % {"id": service.pk}
    return {
        PanelAction.SUSPEND: _("Suspension of service #%(id)d requested: the control panel does it within a few seconds."),
        PanelAction.RESUME: _("Resumption of service #%(id)d requested: the control panel does it within a few seconds."),
        PanelAction.CLOSE: _("Deletion of service #%(id)d requested: the control panel does it within a few seconds."),
    }[action] % {"id": service.pk}


@login_required
def service_action(request, service_id: int):
    """Suspend, resume or delete. Suspending and deleting first show what they do and wait for a "yes"."""
    service = client_service(client=client_of(request.user), service_id=service_id)
    action = (request.POST if request.method == "POST" else request.GET).get("action", "")
    confirmed = request.method == "POST" and request.POST.get("confirm") == "yes"
    if request.method == "POST" and (confirmed or action not in CONFIRMED_BY_CLIENT):
        try:
            service = service_client_request(service=service, action=action, user=request.user, confirmed=confirmed)
        except NothingToDo as error:
            messages.info(request, " ".join(error.messages))
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(request, _requested_message(service, action))
        return redirect("service_detail", service_id=service.pk)
    if action not in CONFIRMED_BY_CLIENT or not service_client_actions(service)[action]:
        messages.error(request, _("This action is not available now."))
        return redirect("service_detail", service_id=service.pk)
    return render(
        request,
        "account/service_confirm.html",
        {
            "service": service,
            "action": action,
            "addresses": service_ip_addresses(service=service),
        },
    )


@login_required
@require_POST
def service_auto_renew(request, service_id: int):
    service = client_service(client=client_of(request.user), service_id=service_id)
    if (choice := request.POST.get("enabled")) not in ("on", "off"):
        messages.error(request, _("This action is not available."))
        return redirect("service_detail", service_id=service.pk)
    enabled = choice == "on"
    try:
        service_auto_renew_set(service=service, enabled=enabled, by=request.user)
    except NothingToDo as error:
        messages.info(request, " ".join(error.messages))
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        done = _("Auto-renew is on: the service is renewed from your balance.") if enabled else _("Auto-renew is off.")
        messages.success(request, done)
    return redirect("service_detail", service_id=service.pk)


@login_required
def service_renew_view(request, service_id: int):
    """Renew Now: the periods chosen on the service page, then a page with the amount and the new paid-until that waits for a "yes".

    The form carries the paid-until the client saw: a second "yes" (a double click, the back button) finds
    it moved and charges nothing.
    """
    client = client_of(request.user)
    service = client_service(client=client, service_id=service_id)
    if not service_client_renewable(service):
        messages.error(request, _("This action is not available now."))
        return redirect("service_detail", service_id=service.pk)
    form = RenewForm(request.POST if request.method == "POST" else request.GET, service=service, currency=client.currency)
    if not form.is_valid():
        messages.error(request, " ".join(message for errors in form.errors.values() for message in errors))
        return redirect("service_detail", service_id=service.pk)
    periods, seen = form.cleaned_data["periods"], form.cleaned_data["expires"]
    if request.method == "POST" and request.POST.get("confirm") == "yes":
        try:
            renewed = service_client_renew(service=service, periods=periods, expected_expiry=seen, user=request.user)
        except InsufficientFunds as error:
            top_up = f"{reverse('balance')}?amount={error.missing}"
            messages.error(request, format_html('{} <a href="{}">{}</a>', error.messages[0], top_up, _("Top up the balance")))
        except NothingToDo as error:
            messages.info(request, " ".join(error.messages))
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(
                request,
                _("Service #%(id)d is renewed until %(until)s. Your balance is now %(balance)s.")
                % {
                    "id": renewed.pk,
                    "until": date_format(timezone.localtime(renewed.expires_at), "DATE_FORMAT"),
                    "balance": money_format(client_balance(client=client), client.currency),
                },
            )
        return redirect("service_detail", service_id=service.pk)
    if seen != service.expires_at:
        # Renewed meanwhile (another tab, the daily run): the page the choice was made on is out of date.
        messages.info(request, _("Service #%(id)d has just been renewed: check its new paid-until date first.") % {"id": service.pk})
        return redirect("service_detail", service_id=service.pk)
    quote = service_renewal_quote(service=service, periods=periods)
    balance = client_balance(client=client)
    return render(
        request,
        "account/service_renew.html",
        {
            "service": service,
            "currency": client.currency,
            "form": form,
            "quote": quote,
            "length": renewal_length(service.period, periods),
            "balance": balance,
            "missing": max(quote.amount - balance, 0),
        },
    )


@login_required
def notifications(request):
    """The notices sent to the client about its services, newest first."""
    client = client_of(request.user)
    page = Paginator(client.notifications.select_related("service"), 25).get_page(request.GET.get("page"))
    return render(request, "account/notifications.html", {"page": page})


@csrf_exempt
@require_POST
def gateway_callback(request, gateway: str):
    """A payment gateway's server-to-server notification; its signature, not a cookie, proves it."""
    try:
        payment_callback(gateway_code=gateway, body=request.body, headers=request.headers)
    except ValidationError as error:
        return HttpResponseBadRequest(" ".join(error.messages))
    return HttpResponse("OK")


@login_required
def service_change_view(request, service_id: int):
    """Change plan or resources: the form, the exact charge or credit it comes to (a GET), then a "yes" (a POST) that books it."""
    client = client_of(request.user)
    service = client_service(client=client, service_id=service_id)
    data = request.POST if request.method == "POST" else (request.GET or None)
    form = ServiceChangeForm(data, service=service)
    quote = None
    if form.is_bound and form.is_valid():
        change = {"service": service, "tariff": form.cleaned_data["tariff"], "quantities": form.quantities()}
        if request.method == "POST" and request.POST.get("confirm") == "yes":
            try:
                service_change(**change, by=request.user, expected_price=form.cleaned_data["price"])
            except InsufficientFunds as error:
                top_up = f"{reverse('balance')}?amount={error.missing}"
                messages.error(request, format_html('{} <a href="{}">{}</a>', error.messages[0], top_up, _("Top up the balance")))
            except NothingToDo as error:
                messages.info(request, " ".join(error.messages))
            except ValidationError as error:
                add_service_errors(form, error)
            else:
                done = _("Service #%(id)d is changed: the control panel applies it within a few seconds.") % {"id": service.pk}
                messages.success(request, done)
                return redirect("service_detail", service_id=service.pk)
            if not form.errors:
                return redirect("service_detail", service_id=service.pk)
        else:
            try:
                quote = service_change_quote(**change)
            except ValidationError as error:  # NothingToDo too: the form says there is no change
                add_service_errors(form, error)
    return render(
        request,
        "account/service_change.html",
        {"service": service, "form": form, "quote": quote, "currency": client.currency, "balance": client_balance(client=client)},
    )


@login_required
def service_change_preview(request, service_id: int):
    """The live preview: what the form's values come to, as JSON; errors by field (400) for anything it refuses."""
    client = client_of(request.user)
    service = client_service(client=client, service_id=service_id)
    form = ServiceChangeForm(request.GET, service=service)
    if form.is_valid():
        try:
            quote = service_change_quote(service=service, tariff=form.cleaned_data["tariff"], quantities=form.quantities())
        except ValidationError as error:
            add_service_errors(form, error)
    if form.errors:
        return JsonResponse({"errors": {field: list(errors) for field, errors in form.errors.items()}}, status=400)
    return JsonResponse(
        {
            "amount": str(quote.amount),
            "charge": str(quote.charge),
            "credit": str(quote.credit),
            "old_price": str(quote.old_price),
            "new_price": str(quote.new_price),
            "days_left": quote.days.days_left,
            "days_in_period": quote.days.days_in_period,
            "from": quote.days.change_day.isoformat(),
            "until": quote.days.period_end.isoformat(),
            "currency": client.currency,
            "text": str(quote.description),
        }
    )
