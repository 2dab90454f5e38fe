"""Clients, their balance and ledger, payments and documents (invoices, credit notes, receipts).

Thin: each action calls the service the pages and the admin call for the same thing; a client's token
sees only its own client's rows, staff need the Django permission the admin asks for.
"""

import hashlib

import django_filters
from django.http import HttpResponse
from django.utils.translation import gettext_lazy as _
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import mixins, renderers, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.admin import STAFF_LEDGER_KINDS
from billing.admin_refunds import REFUND_PERMISSION
from billing.api.filters import IdFilter
from billing.api.idempotency import idempotent
from billing.api.pagination import NewestFirstCursorPagination
from billing.api.permissions import ScopePermission, acting_client, own_rows
from billing.choices import DocumentKind, PaymentStatus
from billing.models import Client, Document, DocumentLine, LedgerEntry, Payment
from billing.payments import GATEWAYS, gateway_name, payment_cancel, payment_confirm, payment_start
from billing.pdf import document_pdf_response
from billing.refunds import REASON_MAX, invoice_refund, invoice_refundable, invoice_refunded
from billing.selectors import client_balance, client_list_with_balance
from billing.services import ledger_entry_add
from billing.webhooks.models import WebhookEvent


class StaffActions(BasePermission):
    """Staff need the Django permission the admin asks for the same action (`staff_permissions[action]`);
    other users may use only the view's `client_actions`, on their own client's rows."""

    message = _("Only staff may use this.")

    def has_permission(self, request, view):
        if request.user.is_staff:
            needed = view.staff_permissions.get(view.action, ())
            needed = (needed,) if isinstance(needed, str) else needed
            missing = [permission for permission in needed if not request.user.has_perm(permission)]
            if missing:
                self.message = _("Your account lacks the permission “%(permission)s”.") % {"permission": ", ".join(missing)}
                return False
            return True
        return view.action in view.client_actions


PERMISSIONS = [IsAuthenticated, ScopePermission, StaffActions]


class Money(serializers.DecimalField):
    """An amount as the admin's forms take it (12 digits, cents); the services check its range and sign."""

    def __init__(self, **kwargs):
        super().__init__(max_digits=12, decimal_places=2, **kwargs)


def created_range(field_name: str = "created_at"):
    return (
        django_filters.DateFilter(field_name=field_name, lookup_expr="date__gte", label="On or after this day"),
        django_filters.DateFilter(field_name=field_name, lookup_expr="date__lte", label="On or before this day"),
    )


# Clients and balance


class ClientSerializer(serializers.ModelSerializer):
    balance = Money(read_only=True, help_text="The sum of the client's ledger entries.")

    class Meta:
        model = Client
        fields = ["id", "name", "email", "currency", "language", "balance", "address", "tax_id", "tax_exempt", "created_at"]


class ClientFilter(django_filters.FilterSet):
    email = django_filters.CharFilter(lookup_expr="iexact")
    created_after, created_before = created_range()

    class Meta:
        model = Client
        fields = ["email", "currency", "created_after", "created_before"]


class ClientViewSet(viewsets.ReadOnlyModelViewSet):
    """Clients with their balance (staff)."""

    serializer_class = ClientSerializer
    permission_classes = PERMISSIONS
    staff_permissions = {"list": "billing.view_client", "retrieve": "billing.view_client"}
    client_actions = set()
    filterset_class = ClientFilter
    ordering_fields = ["id", "name", "email", "created_at", "balance"]

    def get_queryset(self):
        return client_list_with_balance().order_by("name", "pk")


class BalanceSerializer(serializers.Serializer):
    client = serializers.IntegerField()
    balance = Money()
    currency = serializers.CharField()


class BalanceView(APIView):
    """The balance of the token's own client (staff read a client's balance in /clients/{id})."""

    @extend_schema(responses=BalanceSerializer, operation_id="balance")
    def get(self, request):
        client = acting_client(request)
        balance = {"client": client.pk, "balance": client_balance(client=client), "currency": client.currency}
        return Response(BalanceSerializer(balance).data)


# The ledger


class LedgerEntrySerializer(serializers.ModelSerializer):
    reference = serializers.CharField(read_only=True, help_text="In the request's language.")
    document_number = serializers.CharField(source="document.number", read_only=True, allow_null=True, default=None)

    class Meta:
        model = LedgerEntry
        fields = ["id", "client", "kind", "amount", "reference", "document", "document_number", "created_at"]


class LedgerEntryCreateSerializer(serializers.Serializer):
    client = serializers.PrimaryKeyRelatedField(queryset=Client.objects.all())
    kind = serializers.ChoiceField(choices=STAFF_LEDGER_KINDS, help_text="Charges come from orders, never added by hand.")
    amount = Money(help_text="Positive; an adjustment may be negative.")
    reference = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)


class LedgerFilter(django_filters.FilterSet):
    client = IdFilter(field_name="client_id")
    created_after, created_before = created_range()

    class Meta:
        model = LedgerEntry
        fields = ["client", "kind", "created_after", "created_before"]


class LedgerViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """The ledger: a client's own movements; staff see every client's and add top-ups, refunds and adjustments."""

    serializer_class = LedgerEntrySerializer
    permission_classes = PERMISSIONS
    staff_permissions = {"list": "billing.view_ledgerentry", "create": "billing.add_ledgerentry"}
    client_actions = {"list"}
    pagination_class = NewestFirstCursorPagination
    filterset_class = LedgerFilter
    filter_backends = [DjangoFilterBackend]  # no ordering: the cursor keeps its own (newest first)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema generator's request has no user
            return LedgerEntry.objects.none()
        return own_rows(self.request, LedgerEntry.objects.select_related("document"))

    @extend_schema(request=LedgerEntryCreateSerializer, responses={201: LedgerEntrySerializer})
    @idempotent
    def create(self, request):
        given = LedgerEntryCreateSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        entry = ledger_entry_add(**given.validated_data, created_by=request.user)
        return Response(LedgerEntrySerializer(entry).data, status=status.HTTP_201_CREATED)


# Payments


class PaymentSerializer(serializers.ModelSerializer):
    gateway_name = serializers.SerializerMethodField(help_text="The payment method's name in the request's language.")
    instructions = serializers.SerializerMethodField(help_text="What the client does to pay, while the payment awaits payment.")

    class Meta:
        model = Payment
        fields = [
            "id",
            "client",
            "reference",
            "gateway",
            "gateway_name",
            "amount",
            "currency",
            "status",
            "external_id",
            "instructions",
            "created_at",
            "paid_at",
        ]

    def get_gateway_name(self, payment) -> str:
        return gateway_name(payment.gateway)

    def get_instructions(self, payment) -> str:
        gateway = GATEWAYS.get(payment.gateway)
        return gateway.instructions(payment) if gateway and payment.status == PaymentStatus.PENDING else ""


class PaymentStartedSerializer(PaymentSerializer):
    """A payment just started: what the balance page would show next, or the gateway's page to send the client to."""

    redirect_url = serializers.SerializerMethodField(help_text="Send the client here to pay (a card gateway); empty otherwise.")

    class Meta(PaymentSerializer.Meta):
        fields = [*PaymentSerializer.Meta.fields, "redirect_url"]

    def get_instructions(self, payment) -> str:
        return self.context["start"].instructions

    def get_redirect_url(self, payment) -> str:
        return self.context["start"].redirect_url


class PaymentCreateSerializer(serializers.Serializer):
    gateway = serializers.CharField(max_length=32, help_text="A payment method offered on the balance page, e.g. `manual`.")
    amount = Money()
    client = serializers.PrimaryKeyRelatedField(
        queryset=Client.objects.all(), required=False, help_text="Staff: the client to top up. A client's token always tops up its own."
    )


class PaymentFilter(django_filters.FilterSet):
    client = IdFilter(field_name="client_id")
    created_after, created_before = created_range()

    class Meta:
        model = Payment
        fields = ["client", "status", "gateway", "created_after", "created_before"]


class PaymentViewSet(viewsets.ReadOnlyModelViewSet):
    """Top-ups through the payment methods: a client starts its own; staff confirm bank transfers or cancel."""

    serializer_class = PaymentSerializer
    permission_classes = PERMISSIONS
    staff_permissions = {
        "list": "billing.view_payment",
        "retrieve": "billing.view_payment",
        "create": "billing.add_payment",
        "confirm": "billing.change_payment",
        "cancel": "billing.change_payment",
    }
    client_actions = {"list", "retrieve", "create"}
    filterset_class = PaymentFilter
    ordering_fields = ["id", "created_at", "paid_at", "amount"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema generator's request has no user
            return Payment.objects.none()
        return own_rows(self.request, Payment.objects.order_by("-created_at", "-pk"))

    @extend_schema(request=PaymentCreateSerializer, responses={201: PaymentStartedSerializer})
    @idempotent
    def create(self, request):
        given = PaymentCreateSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        if request.user.is_staff:
            client = given.validated_data.get("client")
            if client is None:
                raise serializers.ValidationError({"client": [_("Choose the client to top up.")]})
        else:
            client = acting_client(request)
        data = given.validated_data
        payment, start = payment_start(client=client, gateway_code=data["gateway"], amount=data["amount"], by=request.user)
        payment.refresh_from_db()  # a gateway that pays at once has confirmed it meanwhile
        body = PaymentStartedSerializer(payment, context={"start": start}).data
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=PaymentSerializer)
    @idempotent
    @action(detail=True, methods=["post"])
    def confirm(self, request, pk=None):
        """The money has arrived: the payment is paid and the balance credited, once."""
        payment = payment_confirm(payment=self.get_object(), by=request.user)
        return Response(PaymentSerializer(payment).data)

    @extend_schema(request=None, responses=PaymentSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        return Response(PaymentSerializer(payment_cancel(payment=self.get_object())).data)


# Documents: invoices, credit notes, receipts


class DocumentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Document
        fields = ["id", "kind", "number", "client", "service", "corrects", "issued_at", "currency", "net", "tax", "gross"]


class DocumentLineSerializer(serializers.ModelSerializer):
    description = serializers.CharField(read_only=True, help_text="In the request's language.")

    class Meta:
        model = DocumentLine
        fields = ["description", "period_start", "period_end", "quantity", "unit_price", "net", "tax", "gross"]


MONEY_OR_NULL = {"type": "string", "format": "decimal", "pattern": r"^-?\d{0,10}(?:\.\d{0,2})?$", "nullable": True}


class DocumentDetailSerializer(DocumentSerializer):
    lines = DocumentLineSerializer(many=True, read_only=True)
    refunded = serializers.SerializerMethodField(help_text="An invoice: what its credit notes gave back. Null for other documents.")
    refundable = serializers.SerializerMethodField(help_text="An invoice: what is left to refund. Null for other documents.")

    class Meta(DocumentSerializer.Meta):
        fields = [*DocumentSerializer.Meta.fields, "tax_rate", "prices_include_tax", "issuer", "buyer", "lines", "refunded", "refundable"]

    @extend_schema_field(MONEY_OR_NULL)
    def get_refunded(self, document):
        return str(invoice_refunded(document)) if document.kind == DocumentKind.INVOICE else None

    @extend_schema_field(MONEY_OR_NULL)
    def get_refundable(self, document):
        return str(invoice_refundable(document)) if document.kind == DocumentKind.INVOICE else None


class RefundSerializer(serializers.Serializer):
    amount = Money(help_text="At most what is left to refund of the invoice.")
    reason = serializers.CharField(max_length=REASON_MAX, required=False, default="", allow_blank=True)


class DocumentFilter(django_filters.FilterSet):
    # Ids, not choices of existing rows: a choice's "not one of the available choices" told a client which ids exist.
    client = IdFilter(field_name="client_id")
    service = IdFilter(field_name="service_id")
    corrects = IdFilter(field_name="corrects_id")
    issued_after, issued_before = created_range("issued_at")

    class Meta:
        model = Document
        fields = ["kind", "client", "service", "corrects", "issued_after", "issued_before"]


class PdfRenderer(renderers.BaseRenderer):
    media_type = "application/pdf"
    format = "pdf"
    charset = None
    render_style = "binary"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data


class DocumentViewSet(viewsets.ReadOnlyModelViewSet):
    """Invoices, credit notes and receipts as the client area shows them, with their PDFs; staff refund invoices."""

    permission_classes = PERMISSIONS
    staff_permissions = {
        "list": "billing.view_document",
        "retrieve": "billing.view_document",
        "pdf": "billing.view_document",
        "refund": ("billing.view_document", REFUND_PERMISSION),
    }
    client_actions = {"list", "retrieve", "pdf"}
    filterset_class = DocumentFilter
    ordering_fields = ["id", "issued_at", "number", "gross"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema generator's request has no user
            return Document.objects.none()
        documents = Document.objects.order_by("-issued_at", "-pk")
        if self.action != "list":
            documents = documents.select_related("corrects").prefetch_related("lines")
        return own_rows(self.request, documents)

    def get_serializer_class(self):
        return DocumentSerializer if self.action == "list" else DocumentDetailSerializer

    def finalize_response(self, request, response, *args, **kwargs):
        # An error of the PDF action is JSON like every other error, whatever the request accepted.
        if isinstance(response, Response) and isinstance(getattr(request, "accepted_renderer", None), PdfRenderer):
            request.accepted_renderer, request.accepted_media_type = renderers.JSONRenderer(), "application/json"
        return super().finalize_response(request, response, *args, **kwargs)

    @extend_schema(responses={(200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY, description="The document as a PDF.")})
    @action(detail=True, methods=["get"], renderer_classes=[renderers.JSONRenderer, PdfRenderer])
    def pdf(self, request, pk=None) -> HttpResponse:
        """The document's PDF, as the client area's download, in the request's language."""
        return document_pdf_response(self.get_object())

    @extend_schema(request=RefundSerializer, responses={201: DocumentDetailSerializer})
    @idempotent
    @action(detail=True, methods=["post"])
    def refund(self, request, pk=None):
        """Refund part of an invoice to the client's balance: a credit note naming the invoice, never more than is left."""
        given = RefundSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        # The service's own once-only key: this user's Idempotency-Key, so a repeat after the API's record expired still finds it.
        key = hashlib.sha256(f"{request.user.pk}:{request.headers['Idempotency-Key']}".encode()).hexdigest()[:40]
        note = invoice_refund(invoice=self.get_object(), by=request.user, idempotency_key=key, **given.validated_data)
        note = Document.objects.select_related("corrects").prefetch_related("lines").get(pk=note.pk)
        return Response(DocumentDetailSerializer(note).data, status=status.HTTP_201_CREATED)


# Events: the polling alternative to webhooks


class EventSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookEvent
        fields = ["event_id", "type", "data", "created_at"]


class EventViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """What happened, newest first: the events webhooks deliver, for integrators that poll instead (staff)."""

    serializer_class = EventSerializer
    permission_classes = PERMISSIONS
    staff_permissions = {"list": "billing.view_webhookevent"}
    client_actions = set()
    pagination_class = NewestFirstCursorPagination
    filter_backends = [DjangoFilterBackend]
    filterset_fields = ["type"]
    queryset = WebhookEvent.objects.all()
