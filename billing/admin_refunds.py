"""Staff refund part of an invoice from its admin page: an amount and a reason, refunded once however often the form is sent.

The form's idempotency key is made when the page is rendered and comes back in a hidden field: a double submit,
or the page sent again from the browser's history, finds the first credit note instead of refunding twice.
"""

import secrets
from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from billing.choices import DocumentKind
from billing.constants import MONEY_MAX
from billing.models import Document
from billing.money import money_format
from billing.refunds import KEY_MAX, REASON_MAX, invoice_refund, invoice_refundable, invoice_refunded

REFUND_PERMISSION = "billing.add_ledgerentry"  # a refund is a ledger entry staff add


class InvoiceRefundForm(forms.Form):
    amount = forms.DecimalField(
        label=gettext_lazy("Amount"), max_digits=12, decimal_places=2, min_value=Decimal("0.01"), max_value=MONEY_MAX
    )
    reason = forms.CharField(label=gettext_lazy("Reason"), max_length=REASON_MAX, required=False)
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=KEY_MAX)


@admin.display(description=gettext_lazy("refunded"))
def invoice_refunds(document: Document) -> str:
    """On an invoice's page: what was refunded, what is left, and the refund page."""
    if document.kind != DocumentKind.INVOICE:
        return "-"
    summary = _("%(refunded)s refunded, %(left)s left.") % {
        "refunded": money_format(invoice_refunded(document), document.currency),
        "left": money_format(invoice_refundable(document), document.currency),
    }
    url = reverse("admin:billing_document_refund", args=[document.pk])
    return format_html('{} <a href="{}">{}</a>', summary, url, _("Refund part of this invoice"))


def refund_urls(model_admin) -> list:
    view = model_admin.admin_site.admin_view(lambda request, document_id: invoice_refund_view(model_admin, request, document_id))
    return [path("<int:document_id>/refund/", view, name="billing_document_refund")]


def invoice_refund_view(model_admin, request, document_id: int):
    """The refund page of an invoice: the amount left, a form, and on success the credit note's page."""
    invoice = get_object_or_404(Document.objects.select_related("client", "service"), pk=document_id, kind=DocumentKind.INVOICE)
    if not (model_admin.has_view_permission(request, invoice) and request.user.has_perm(REFUND_PERMISSION)):
        raise PermissionDenied
    invoice_url = reverse("admin:billing_document_change", args=[invoice.pk])
    if request.method == "POST":
        form = InvoiceRefundForm(request.POST)
    else:
        form = InvoiceRefundForm(initial={"idempotency_key": secrets.token_urlsafe(24)})
    if form.is_valid():
        try:
            note = invoice_refund(
                invoice=invoice,
                amount=form.cleaned_data["amount"],
                by=request.user,
                idempotency_key=form.cleaned_data["idempotency_key"],
                reason=form.cleaned_data["reason"],
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            message = _("%(amount)s of %(invoice)s refunded to the client's balance: credit note %(note)s.") % {
                "amount": money_format(-note.gross, note.currency),
                "invoice": invoice.number,
                "note": note.number,
            }
            model_admin.message_user(request, message, messages.SUCCESS)
            return HttpResponseRedirect(reverse("admin:billing_document_change", args=[note.pk]))
    elif form.errors.get("idempotency_key"):
        form.add_error(None, _("The refund request is not valid: reload the page and try again."))
    context = {
        **model_admin.admin_site.each_context(request),
        "title": _("Refund part of %(number)s") % {"number": invoice.number},
        "opts": model_admin.opts,
        "original": invoice,
        "form": form,
        "change_url": invoice_url,
        "total": money_format(invoice.gross, invoice.currency),
        "refunded": money_format(invoice_refunded(invoice), invoice.currency),
        "left": money_format(invoice_refundable(invoice), invoice.currency),
    }
    return TemplateResponse(request, "admin/billing/document/refund_form.html", context)
