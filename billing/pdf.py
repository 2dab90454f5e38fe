"""A document as its reader sees it: the context of its page, and the same page rendered as a PDF."""

from decimal import Decimal

from django.http import HttpResponse
from django.template.loader import render_to_string

from billing.choices import DocumentKind
from billing.models import Document


def document_context(document: Document) -> dict:
    """What the page and the PDF show: the lines and, for an invoice, its credit notes and the amount they refunded."""
    corrections = list(document.corrections.order_by("issued_at", "pk")) if document.kind == DocumentKind.INVOICE else []
    return {
        "document": document,
        "lines": list(document.lines.all()),
        "corrections": corrections,
        # Credit notes are negative: what they refunded is the opposite of their totals.
        "refunded": -sum((note.gross for note in corrections), Decimal("0.00")),
    }


def document_pdf(document: Document) -> bytes:
    """The document's page as a PDF, in the active language."""
    # WeasyPrint loads pango when imported: only the processes that make PDFs pay for it.
    from weasyprint import HTML

    return HTML(string=render_to_string("documents/document_pdf.html", document_context(document))).write_pdf()


def document_pdf_response(document: Document) -> HttpResponse:
    response = HttpResponse(document_pdf(document), content_type="application/pdf")
    # Numbers are made of the series, digits and dashes: nothing in them needs quoting.
    response["Content-Disposition"] = f"attachment; filename={document.number}.pdf"
    return response
