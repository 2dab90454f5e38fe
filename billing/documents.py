"""Invoices, credit notes and receipts: the document of every movement of money.

A document is issued in the transaction of the ledger entry it documents, so a charge and its invoice
exist together or not at all. Its number comes from a locked `DocumentSequence` row in that same
transaction (never a database sequence, which skips on rollback): numbers are gapless per series and
year, the year being the billing time zone's. Tax is split per line, rounded half-up to the cent, so
the lines add up to the totals exactly.
"""

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from functools import partial

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from billing.choices import DocumentKind
from billing.cycle_rules import local_date
from billing.document_mail import document_email_enqueue
from billing.models import Client, Document, DocumentLine, DocumentSequence
from billing.stored_text import StoredText
from billing.webhooks.events import event_record
from billing.webhooks.models import EventType
from billing.webhooks.payloads import invoice_payload

CENT = Decimal("0.01")


def series_of(kind: str) -> str:
    return {
        DocumentKind.INVOICE: settings.INVOICE_SERIES,
        DocumentKind.CREDIT_NOTE: settings.CREDIT_NOTE_SERIES,
        DocumentKind.RECEIPT: settings.RECEIPT_SERIES,
    }[kind]


@dataclass(frozen=True)
class Line:
    """A line as billed: `amount` is the price as the tariff states it (negative on a credit note).

    `money` marks an amount of money rather than a price (a refund of 10.00 returns 10.00): its tax is
    taken out of it whether or not prices include tax.
    """

    description: StoredText
    amount: Decimal
    quantity: int = 1
    period_start: date | None = None
    period_end: date | None = None
    money: bool = False


@dataclass(frozen=True)
class Split:
    net: Decimal
    tax: Decimal
    gross: Decimal


def cents(amount: Decimal) -> Decimal:
    """Half-up to the cent (away from zero for negative amounts, so a credit mirrors its charge)."""
    return Decimal(amount).quantize(CENT, rounding=ROUND_HALF_UP)


def tax_split(amount: Decimal, *, rate: Decimal, prices_include_tax: bool) -> Split:
    """Net, tax and gross of one line: the tax is taken out of a price that includes it, or added to one that does not."""
    amount = cents(amount)
    if not rate:
        return Split(net=amount, tax=Decimal("0.00"), gross=amount)
    if prices_include_tax:
        net = cents(amount * 100 / (100 + rate))
        return Split(net=net, tax=amount - net, gross=amount)
    tax = cents(amount * rate / 100)
    return Split(net=amount, tax=tax, gross=amount + tax)


@dataclass(frozen=True)
class Draft:
    """A document before its number: what it will say and what it adds up to."""

    kind: str
    client: Client
    lines: tuple[Line, ...]
    splits: tuple[Split, ...]
    tax_rate: Decimal
    prices_include_tax: bool

    @property
    def gross(self) -> Decimal:
        return sum((split.gross for split in self.splits), Decimal("0.00"))


def document_draft(*, client: Client, kind: str, lines: list[Line], corrects: Document | None = None) -> Draft:
    """The lines with their tax. A receipt (money received, nothing sold) and an exempt client carry none; a credit
    note takes the rate of the invoice it corrects."""
    if corrects is not None:  # the invoice's own terms, whatever the client's exemption has become since
        rate, included = corrects.tax_rate, corrects.prices_include_tax
    else:
        rate, included = Decimal(settings.BILLING_TAX_RATE), settings.BILLING_PRICES_INCLUDE_TAX
        if client.tax_exempt:
            rate = Decimal("0")
    if kind == DocumentKind.RECEIPT:
        rate = Decimal("0")
    splits = tuple(tax_split(line.amount, rate=rate, prices_include_tax=included or line.money) for line in lines)
    return Draft(kind=kind, client=client, lines=tuple(lines), splits=splits, tax_rate=rate, prices_include_tax=included)


def _number_take(series: str, year: int) -> int:
    """The next number of the series in the year, under the sequence row's lock until the transaction ends."""
    row = DocumentSequence.objects.select_for_update().filter(series=series, year=year).first()
    if row is None:
        try:
            with transaction.atomic():
                row = DocumentSequence.objects.create(series=series, year=year)
        except IntegrityError:  # another transaction created the year's row first: wait for its lock
            pass
        row = DocumentSequence.objects.select_for_update().get(series=series, year=year)
    number = row.next_number
    DocumentSequence.objects.filter(pk=row.pk).update(next_number=number + 1)
    return number


@transaction.atomic
def document_issue(*, draft: Draft, service=None, corrects: Document | None = None) -> Document:
    """Number and write the document; call it in the transaction of the ledger entry it documents."""
    series, year = series_of(draft.kind), local_date(timezone.now()).year
    number = _number_take(series, year)
    issued_at = timezone.now()  # after the counter's lock: a later number never carries an earlier time
    client = draft.client
    document = Document.objects.create(
        kind=draft.kind,
        number=settings.DOCUMENT_NUMBER_FORMAT.format(series=series, year=year, number=number),
        series=series,
        year=year,
        sequence_number=number,
        client=client,
        service=service,
        corrects=corrects,
        issued_at=issued_at,
        currency=client.currency,
        issuer=issuer_details(),
        buyer=buyer_details(client),
        tax_rate=draft.tax_rate,
        prices_include_tax=draft.prices_include_tax,
        net=sum((split.net for split in draft.splits), Decimal("0.00")),
        tax=sum((split.tax for split in draft.splits), Decimal("0.00")),
        gross=draft.gross,
    )
    DocumentLine.objects.bulk_create(
        DocumentLine(
            document=document,
            description=line.description,
            period_start=line.period_start,
            period_end=line.period_end,
            quantity=line.quantity,
            unit_price=cents(line.amount / line.quantity) if line.quantity else cents(line.amount),
            net=split.net,
            tax=split.tax,
            gross=split.gross,
        )
        for line, split in zip(draft.lines, draft.splits, strict=True)
    )
    transaction.on_commit(partial(document_email_enqueue, document.pk))  # emailed once the ledger entry commits
    if document.kind == DocumentKind.INVOICE:
        event_record(EventType.INVOICE_ISSUED, invoice_payload(document))
    return document


def issuer_details() -> dict:
    return {
        "name": settings.ISSUER_NAME,
        "address": settings.ISSUER_ADDRESS,
        "tax_id": settings.ISSUER_TAX_ID,
        "bank_details": settings.ISSUER_BANK_DETAILS,
    }


def buyer_details(client: Client) -> dict:
    return {
        "name": client.name,
        "email": client.email,
        "address": client.address,
        "tax_id": client.tax_id,
        "tax_exempt_note": client.tax_exempt_note if client.tax_exempt else "",
    }
