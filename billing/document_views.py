"""The client's invoices, credit notes and receipts: a list, each document's page and its PDF."""

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, render

from billing.models import Document
from billing.pdf import document_context, document_pdf_response
from billing.selectors import client_of

DOCUMENTS_PER_PAGE = 50


def _client_document(request, document_id: int) -> Document:
    """One of the logged-in client's documents; somebody else's is a 404, as a missing one is."""
    documents = Document.objects.filter(client=client_of(request.user)).select_related("corrects")
    return get_object_or_404(documents, pk=document_id)


@login_required
def documents(request):
    client = client_of(request.user)
    page = Paginator(client.documents.all(), DOCUMENTS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "account/documents.html", {"page": page})


@login_required
def document_detail(request, document_id: int):
    return render(request, "account/document.html", document_context(_client_document(request, document_id)))


@login_required
def document_download(request, document_id: int):
    return document_pdf_response(_client_document(request, document_id))
