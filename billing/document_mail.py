"""Each new invoice, credit note and receipt emailed to its client with its PDF (BILLING_EMAIL_DOCUMENTS).

The document is issued in the transaction of its ledger entry; the email is queued once that commits
and sent by the task worker, so a mail server that is down never holds up or rolls back the billing.
`emailed_at` is both the record and the claim: a document is emailed once, and one whose email failed
is sent again by cron for RETRY_FOR.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from billing.choices import DocumentKind
from billing.models import Document
from billing.pdf import document_pdf

logger = logging.getLogger(__name__)

# Cron retries unsent documents this long, as it does notices; older ones are left (staff can download and forward them).
RETRY_FOR = timedelta(days=3)

_SUBJECTS = {
    DocumentKind.INVOICE: _("Invoice %(number)s"),
    DocumentKind.CREDIT_NOTE: _("Credit note %(number)s"),
    DocumentKind.RECEIPT: _("Receipt %(number)s"),
}


def document_email_enqueue(document_id: int) -> None:
    """Queue the document's email (an on_commit callback of document_issue); nothing when documents are not emailed."""
    if not settings.BILLING_EMAIL_DOCUMENTS:
        return
    from billing.tasks import send_document  # the tasks module imports this one

    send_document.enqueue(document_id)


def document_message(document: Document) -> EmailMultiAlternatives:
    """The document as an email to its client, in the client's language: a subject, a text and an HTML body, the PDF attached."""
    client = document.client
    with translation.override(client.language):
        subject = _SUBJECTS[document.kind] % {"number": document.number}
        context = {
            "subject": subject,
            "client": client,
            "document": document,
            # A credit note's totals are negative: the email speaks of the amount it refunds.
            "amount": abs(document.gross),
            # Built in the client's language, so the link opens the page in it (/ru/...).
            "document_url": settings.SITE_URL + reverse("document_detail", args=[document.pk]),
        }
        text = render_to_string("emails/document.txt", context)
        html = render_to_string("emails/document.html", context)
        pdf = document_pdf(document)
    message = EmailMultiAlternatives(subject, text, None, [client.email])
    message.attach_alternative(html, "text/html")
    message.attach(f"{document.number}.pdf", pdf, "application/pdf")
    return message


def document_email_send(*, document_id: int) -> bool:
    """Email the document unless it was emailed; True when this call sent it.

    Claimed by a conditional update of emailed_at (empty to now), not a row lock held while the mail
    server answers: two workers never both send it. A worker that dies between the claim and the
    answer leaves it marked emailed (an email may be lost then, never doubled). A failed send gives the
    claim back for documents_email_pending.
    """
    document = Document.objects.select_related("client").filter(pk=document_id).first()
    if document is None or document.emailed_at is not None:
        return False  # emailed already: the task ran twice, or cron was first
    message = document_message(document)
    if not Document.objects.filter(pk=document.pk, emailed_at__isnull=True).update(emailed_at=timezone.now()):
        return False  # another worker has just claimed it
    try:
        message.send()
    except OSError:  # smtplib.SMTPException is an OSError
        Document.objects.filter(pk=document.pk).update(emailed_at=None)
        logger.exception("could not email document %s to client %s", document.number, document.client_id)
        return False
    return True


def documents_email_pending() -> int:
    """Email every recent document not emailed yet (the mail server was down, or a worker died), oldest first; how many were sent.

    Cron runs it every 15 minutes; with documents not emailed (the setting off) it does nothing.
    """
    if not settings.BILLING_EMAIL_DOCUMENTS:
        return 0
    recent = Document.objects.filter(emailed_at__isnull=True, issued_at__gte=timezone.now() - RETRY_FOR)
    pending = recent.order_by("pk").values_list("pk", flat=True)
    return sum(document_email_send(document_id=pk) for pk in pending)
