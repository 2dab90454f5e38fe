"""Staff see issued invoices, credit notes and receipts as they were issued, and download their PDFs; nothing here changes them."""

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from billing.admin_actions import ReadOnlyMixin
from billing.admin_refunds import invoice_refunds, refund_urls
from billing.models import Document, DocumentLine
from billing.money import money_format
from billing.pdf import document_pdf_response


class DocumentLineInline(ReadOnlyMixin, admin.TabularInline):
    model = DocumentLine
    extra = 0
    fields = readonly_fields = ["description", "period_start", "period_end", "quantity", "unit_price", "net", "tax", "gross"]


@admin.register(Document)
class DocumentAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["number", "kind", "client", "issued_at", "total"]
    list_filter = ["kind", "series", "year"]
    search_fields = ["number", "client__name", "client__email"]
    list_select_related = ["client"]
    inlines = [DocumentLineInline]
    fields = readonly_fields = [
        "pdf",
        "number",
        "kind",
        "client",
        "service",
        "corrects",
        "issued_at",
        "currency",
        "issuer",
        "buyer",
        "tax_rate",
        "prices_include_tax",
        "net",
        "tax",
        "gross",
        invoice_refunds,
        "emailed_at",
    ]

    @admin.display(description=_("total"), ordering="gross")
    def total(self, obj):
        return money_format(obj.gross, obj.currency)

    @admin.display(description=_("PDF"))
    def pdf(self, obj):
        return format_html('<a href="{}">{}</a>', reverse("admin:billing_document_pdf", args=[obj.pk]), _("Download PDF"))

    def get_urls(self):
        download = path("<int:document_id>/pdf/", self.admin_site.admin_view(self.pdf_download), name="billing_document_pdf")
        return [download, *refund_urls(self), *super().get_urls()]

    def pdf_download(self, request, document_id: int):
        document = get_object_or_404(Document.objects.select_related("corrects"), pk=document_id)
        if not self.has_view_permission(request, document):
            raise PermissionDenied
        return document_pdf_response(document)
