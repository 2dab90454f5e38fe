"""Staff change a service's tariff or resources in the admin: the client area's form and preview, applied by service_change."""

from django.contrib import messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext as _

from billing.changes import service_change, service_change_quote
from billing.forms import ServiceChangeForm, add_service_errors
from billing.selectors import client_balance
from billing.services import NothingToDo


class ServiceChangeAdminMixin:
    """A "Change tariff or resources" page on the service: a GET shows what it charges or credits, a POST with "yes" books it."""

    def get_urls(self):
        view = self.admin_site.admin_view(self.change_plan_view)
        return [path("<path:object_id>/change-plan/", view, name="billing_service_change_plan"), *super().get_urls()]

    def change_plan_view(self, request, object_id):
        service = self.get_object(request, unquote(object_id))
        if service is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_change_permission(request, service):
            raise PermissionDenied
        change_url = reverse("admin:billing_service_change", args=[service.pk])
        data = request.POST if request.method == "POST" else (request.GET or None)
        form = ServiceChangeForm(data, service=service)
        quote = None
        if form.is_bound and form.is_valid():
            change = {"service": service, "tariff": form.cleaned_data["tariff"], "quantities": form.quantities()}
            try:
                quote = service_change_quote(**change)
                # A charge or a credit is a ledger movement with its document: the refund page's permission, not only the service's.
                moves_money = bool(quote.charge or quote.credit)
                if moves_money and not request.user.has_perm("billing.add_ledgerentry"):
                    form.add_error(None, _("Only staff who may add ledger entries can make a change that charges or credits money."))
                elif request.method == "POST" and request.POST.get("confirm") == "yes":
                    service_change(**change, by=request.user, expected_price=form.cleaned_data["price"])
                    self.message_user(request, _("Service #%(id)d is changed; the panel gets its new limits.") % {"id": service.pk})
                    return HttpResponseRedirect(change_url)
            except NothingToDo as error:
                self.message_user(request, " ".join(error.messages), messages.INFO)
            except ValidationError as error:  # InsufficientFunds too: it says what is needed and what the balance holds
                add_service_errors(form, error)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Change tariff or resources"),
            "subtitle": str(service),
            "opts": self.opts,
            "original": service,
            "form": form,
            "quote": quote,
            "currency": service.client.currency,
            "balance": client_balance(client=service.client),
            "change_url": change_url,
        }
        return TemplateResponse(request, "admin/billing/service/change_plan_form.html", context).render()
