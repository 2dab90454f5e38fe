"""Services: list, order, pay, renew, change, auto-renew, suspend, resume, delete, and the panel password.

Every write calls the service function the pages call: a client's token follows the client area's rules
(service_client_renew, service_client_request: suspending and deleting need "confirm": true, as the page's
"yes"), a staff token the admin's (service_renew, service_action_request) and needs the Django permission
the admin asks for the same action. A client's token sees only its own client's services (404 for others).
An action that queues a panel operation answers 202 with it; the panel does it within seconds.
"""

from collections import defaultdict
from ipaddress import get_mixed_type_key, ip_address
from types import SimpleNamespace

import django_filters
from django.db.models import F, OuterRef, Subquery
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _
from django.utils.translation import gettext_noop
from drf_spectacular.utils import extend_schema
from modeltranslation.translator import translator
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from billing.api.errors import ApiError
from billing.api.filters import IdFilter, UtcIsoDateTimeFilter
from billing.api.idempotency import idempotent
from billing.api.models import ApiScope
from billing.api.operations_api import OperationSerializer
from billing.api.permissions import ScopePermission, StaffMayView, acting_client, has_scope, own_rows, staff_may
from billing.changes import service_change, service_change_quote
from billing.choices import BillingPeriod, PanelAction, ProductType, ServiceStatus, SuspendReason
from billing.constants import QUANTITY_MAX
from billing.models import Client, Service, ServiceResource, TariffPlan
from billing.secret_fields import is_unreadable
from billing.services import (
    order_place,
    service_action_request,
    service_auto_renew_set,
    service_client_renew,
    service_client_request,
    service_pay,
    service_renew,
)
from billing.stored_text import StoredText
from ipam_sync.models import IPAssignment
from provisioning.choices import PENDING_OPERATION_STATUSES
from provisioning.models import Operation

# The admin's permissions for the same actions: ordering is adding a service; the rest are its change actions.
ADD_SERVICE = "billing.add_service"
CHANGE_SERVICE = "billing.change_service"
ADD_LEDGER_ENTRY = "billing.add_ledgerentry"


def services_queryset():
    """The services the actions hand to the service functions."""
    return Service.objects.defer("panel_password").select_related("tariff")  # decrypted only by the password endpoint


SERVICE_COLUMNS = ("id", "client", "tariff", "status", "suspend_reason", "domain", "period", "price", "setup_fee", "auto_renew")
SERVICE_COLUMNS += ("paid_at", "period_anchor", "expires_at", "panel_username", "created_at", "updated_at")
# The tariff's name in every language (row key → TariffPlan attribute): the reader's is picked as TariffPlan.name picks it.
TARIFF_NAMES = {f"tariff__{field.name}": field.name for field in translator.get_options_for_model(TariffPlan).all_fields["name"]}


def service_rows_queryset():
    """Services as plain rows of what ServiceSerializer shows: building model instances was most of the list's time."""
    pending = Operation.objects.filter(service=OuterRef("pk"), status__in=PENDING_OPERATION_STATUSES).values("action")[:1]
    return (
        Service.objects.annotate(pending_action=Subquery(pending))
        .values(*SERVICE_COLUMNS, *TARIFF_NAMES, "pending_action", product_type=F("tariff__product_type"), currency=F("tariff__currency"))
        .order_by("-pk")
    )


def service_rows(rows) -> list[dict]:
    """Completes rows of service_rows_queryset for ServiceSerializer: two queries however many rows."""
    rows = list(rows)
    ids = [row["id"] for row in rows]
    resources, addresses = defaultdict(list), defaultdict(list)
    for service, kind, quantity in ServiceResource.objects.filter(service__in=ids).values_list("service", "kind", "quantity"):
        resources[service].append({"kind": kind, "quantity": quantity})
    for service, address in IPAssignment.objects.filter(service__in=ids, released_at__isnull=True).values_list("service", "address"):
        addresses[service].append(address)
    for row in rows:
        names = SimpleNamespace(**{attribute: row.pop(key) for key, attribute in TARIFF_NAMES.items()})
        row["tariff_name"] = TariffPlan.name.__get__(names, TariffPlan)
        row["first_payment"] = row["price"] + row["setup_fee"]  # Service.first_payment
        row["resources"] = resources[row["id"]]
        row["live_ips"] = addresses[row["id"]]
    return rows


def service_row(pk: int) -> dict:
    return service_rows(service_rows_queryset().filter(pk=pk))[0]


class ServiceResourceSerializer(serializers.ModelSerializer):
    class Meta:
        model = ServiceResource
        fields = ["kind", "quantity"]


class ServiceSerializer(serializers.ModelSerializer):
    # Reads the rows of service_rows (a docstring here would be the schema's description).
    client = serializers.IntegerField(read_only=True)
    tariff = serializers.IntegerField(read_only=True, label=capfirst(Service._meta.get_field("tariff").verbose_name))
    product_type = serializers.CharField(read_only=True)
    tariff_name = serializers.CharField(read_only=True)
    currency = serializers.CharField(read_only=True)
    first_payment = serializers.DecimalField(
        max_digits=12, decimal_places=2, read_only=True, help_text="What paying the order charges: the first period and the setup fee."
    )
    suspend_reason = serializers.CharField(
        read_only=True, help_text="Why a suspended service is: nonpayment, staff, client or abuse; empty when not suspended."
    )
    pending_action = serializers.CharField(
        read_only=True, allow_null=True, help_text="The panel action on its way for this service, if any."
    )
    resources = ServiceResourceSerializer(many=True, read_only=True)
    ip_addresses = serializers.SerializerMethodField(help_text="The dedicated addresses the service holds now.")

    class Meta:
        model = Service
        fields = [
            "id",
            "client",
            "tariff",
            "tariff_name",
            "product_type",
            "status",
            "suspend_reason",
            "domain",
            "period",
            "currency",
            "price",
            "setup_fee",
            "first_payment",
            "auto_renew",
            "paid_at",
            "period_anchor",
            "expires_at",
            "panel_username",
            "pending_action",
            "resources",
            "ip_addresses",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_ip_addresses(self, row) -> list[str]:
        return sorted(row["live_ips"], key=lambda address: get_mixed_type_key(ip_address(address)))  # IPv4 first, then IPv6


class ServiceActionResultSerializer(serializers.Serializer):
    service = ServiceSerializer()
    operation = OperationSerializer(allow_null=True, help_text="The panel operation on its way for the service, if any.")


class ServiceOrderSerializer(serializers.Serializer):
    client = serializers.PrimaryKeyRelatedField(
        queryset=Client.objects.all(), required=False, help_text="Staff: the client the order is for. A client's token orders for its own."
    )
    tariff = serializers.PrimaryKeyRelatedField(queryset=TariffPlan.objects.all())
    period = serializers.ChoiceField(choices=BillingPeriod.choices, help_text="Months per period; one the tariff is sold for.")
    domain = serializers.CharField(max_length=253, required=False, allow_blank=True, default="")
    resources = serializers.DictField(
        child=serializers.IntegerField(min_value=0, max_value=QUANTITY_MAX),
        required=False,
        help_text="Resource kind → total quantity wanted (included units counted); a kind left out gets the included amount.",
    )

    def get_fields(self):
        fields = super().get_fields()
        request = self.context.get("request")
        if request is not None and request.user.is_authenticated and not request.user.is_staff:
            fields["client"].queryset = request.user.clients.all()
        return fields

    def validate(self, data):
        if self.context["request"].user.is_staff and "client" not in data:
            raise serializers.ValidationError({"client": _("Say which client the order is for.")})
        return data


class ServiceRenewSerializer(serializers.Serializer):
    periods = serializers.IntegerField(help_text="How many periods to pay ahead.")
    expected_expiry = serializers.DateTimeField(
        required=False,
        allow_null=True,
        help_text="The expires_at you saw: when it has moved meanwhile (renewed already), nothing is charged.",
    )


class ServiceAutoRenewSerializer(serializers.Serializer):
    auto_renew = serializers.BooleanField()


class ServiceSuspendSerializer(serializers.Serializer):
    confirm = serializers.BooleanField(default=False, help_text="A client's token: true, having read that the site goes offline.")
    reason = serializers.ChoiceField(
        choices=[(SuspendReason.STAFF, SuspendReason.STAFF.label), (SuspendReason.ABUSE, SuspendReason.ABUSE.label)],
        default=SuspendReason.STAFF,
        help_text="Staff: why (a client's own suspension is always 'client').",
    )


class ServiceDeleteSerializer(serializers.Serializer):
    confirm = serializers.BooleanField(default=False, help_text="A client's token: true, having read that the account and its files go.")


class ServiceChangeSerializer(serializers.Serializer):
    tariff = serializers.PrimaryKeyRelatedField(queryset=TariffPlan.objects.all(), required=False, help_text="Default: the current one.")
    resources = serializers.DictField(
        child=serializers.IntegerField(min_value=0, max_value=QUANTITY_MAX),
        required=False,
        help_text="Resource kind → new total; kinds left out keep theirs (raised to what the tariff includes).",
    )
    expected_price = serializers.DecimalField(
        max_digits=12,
        decimal_places=2,
        required=False,
        help_text="The price per period you saw: when it has changed meanwhile (changed already), nothing is charged.",
    )


class ChangeQuoteSerializer(serializers.Serializer):
    tariff = serializers.IntegerField()
    resources = serializers.DictField(child=serializers.IntegerField(), help_text="Every resource of the new tariff: its new total.")
    old_price = serializers.DecimalField(max_digits=12, decimal_places=2)
    new_price = serializers.DecimalField(max_digits=12, decimal_places=2)
    charge = serializers.DecimalField(max_digits=12, decimal_places=2, help_text="What the change charges now.")
    credit = serializers.DecimalField(max_digits=12, decimal_places=2, help_text="What the change gives back to the balance.")
    days_left = serializers.IntegerField()
    days_in_period = serializers.IntegerField()
    change_day = serializers.DateField()
    period_end = serializers.DateField()
    description = serializers.CharField()


class PanelPasswordSerializer(serializers.Serializer):
    panel_username = serializers.CharField()
    password = serializers.CharField()


class ServiceFilter(django_filters.FilterSet):
    product_type = django_filters.ChoiceFilter(field_name="tariff__product_type", choices=ProductType.choices)
    client = IdFilter(field_name="client_id")
    tariff = IdFilter(field_name="tariff_id")
    expires_before = UtcIsoDateTimeFilter(field_name="expires_at", lookup_expr="lt")
    expires_after = UtcIsoDateTimeFilter(field_name="expires_at", lookup_expr="gte")

    class Meta:
        model = Service
        fields = ["status", "suspend_reason", "product_type", "client", "tariff", "expires_before", "expires_after"]


class ServiceViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """A client's token: its own client's services; staff: every client's."""

    queryset = Service.objects.none()  # the model, for the schema; get_queryset reads the rows
    serializer_class = ServiceSerializer
    permission_classes = [IsAuthenticated, ScopePermission, StaffMayView]
    staff_view_permissions = ("billing.view_service", CHANGE_SERVICE)
    filterset_class = ServiceFilter
    ordering_fields = ["id", "created_at", "expires_at", "status", "price"]
    ordering = ["-pk"]

    def get_queryset(self):
        # Reading serializes plain rows; the actions hand model instances to the service functions.
        services = service_rows_queryset() if self.action in ("list", "retrieve") else services_queryset()
        return own_rows(self.request, services)

    def list(self, request):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(self.get_serializer(service_rows(page), many=True).data)

    def retrieve(self, request, pk=None):
        return Response(self.get_serializer(service_rows([self.get_object()])[0]).data)

    def _service(self, request, permission: str = CHANGE_SERVICE) -> Service:
        """The service the request names (404 if not one it may see); staff need the admin's permission."""
        service = self.get_object()
        if request.user.is_staff and not staff_may(request, permission):
            raise PermissionDenied(_("You do not have permission to do this to services."))
        return service

    def _result(self, service_id: int, *, created: bool = False) -> Response:
        """The service as it is now and the operation on its way: 201 for a renewal, else 202 when an operation is queued, 200 when not."""
        operation = Operation.objects.filter(service=service_id, status__in=PENDING_OPERATION_STATUSES).defer("secret").first()
        service = ServiceSerializer(service_row(service_id)).data
        data = {"service": service, "operation": OperationSerializer(operation).data if operation else None}
        answer = status.HTTP_201_CREATED if created else status.HTTP_202_ACCEPTED if operation else status.HTTP_200_OK
        return Response(data, status=answer)

    @extend_schema(request=ServiceOrderSerializer, responses={201: ServiceSerializer})
    @idempotent
    def create(self, request):
        """Order a service (order_place): priced on the server, then paid with POST /services/{id}/pay."""
        staff = request.user.is_staff
        if staff and not staff_may(request, ADD_SERVICE):
            raise PermissionDenied(_("You do not have permission to do this to services."))
        order = ServiceOrderSerializer(data=request.data, context=self.get_serializer_context())
        order.is_valid(raise_exception=True)
        data = order.validated_data
        service = order_place(
            client=data["client"] if staff else acting_client(request),
            user=None if staff else request.user,  # as the admin's order: ordered_by names a client's user
            tariff=data["tariff"],
            period=data["period"],
            domain=data["domain"],
            resources=data.get("resources"),
            by_staff=staff,
        )
        return Response(ServiceSerializer(service_row(service.pk)).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=ServiceAutoRenewSerializer, responses={200: ServiceSerializer})
    def partial_update(self, request, pk=None):
        """Switch auto-renew on or off."""
        service = self._service(request)
        form = ServiceAutoRenewSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        service_auto_renew_set(service=service, enabled=form.validated_data["auto_renew"], by=request.user)
        return Response(ServiceSerializer(service_row(service.pk)).data)

    @extend_schema(request=None, responses={202: ServiceActionResultSerializer})
    @action(detail=True, methods=["post"])
    @idempotent
    def pay(self, request, pk=None):
        """Pay an ordered service from the balance (its first_payment) and have its account created."""
        service = self._service(request)
        service_pay(service=service, by=request.user)
        return self._result(service.pk)

    @extend_schema(request=ServiceRenewSerializer, responses={201: ServiceActionResultSerializer})
    @action(detail=True, methods=["post"])
    @idempotent
    def renew(self, request, pk=None):
        """Charge the balance for more periods; the expiry moves on from where it was."""
        service = self._service(request)
        form = ServiceRenewSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        periods, seen = form.validated_data["periods"], form.validated_data.get("expected_expiry")
        if request.user.is_staff:
            service_renew(service=service, periods=periods, expected_expiry=seen, by=request.user)
        else:
            service_client_renew(service=service, periods=periods, expected_expiry=seen, user=request.user)
        return self._result(service.pk, created=True)

    def _change_quote(self, request):
        service = self._service(request)
        form = ServiceChangeSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        change = {"service": service, "tariff": form.validated_data.get("tariff"), "quantities": form.validated_data.get("resources")}
        quote = service_change_quote(**change)
        # As the admin's change page: a change that moves money also needs the ledger's permission.
        if request.user.is_staff and (quote.charge or quote.credit) and not staff_may(request, ADD_LEDGER_ENTRY):
            raise PermissionDenied(_("Only staff who may add ledger entries can make a change that charges or credits money."))
        return change, quote, form.validated_data.get("expected_price")

    @extend_schema(request=ServiceChangeSerializer, responses={202: ServiceActionResultSerializer})
    @action(detail=True, methods=["post"])
    @idempotent
    def change(self, request, pk=None):
        """Change the tariff and/or resources now: the rest of the period is charged or credited, the panel gets the new limits."""
        change, _quote, expected_price = self._change_quote(request)
        service_change(**change, by=request.user, expected_price=expected_price)
        return self._result(change["service"].pk)

    @extend_schema(request=ServiceChangeSerializer, responses={200: ChangeQuoteSerializer})
    @action(detail=True, methods=["post"], url_path="change/preview")
    def change_preview(self, request, pk=None):
        """What a change would charge or credit, changing nothing (no Idempotency-Key needed)."""
        _change, quote, _expected = self._change_quote(request)
        data = {
            "tariff": quote.tariff.pk,
            "resources": quote.quantities,
            "old_price": quote.old_price,
            "new_price": quote.new_price,
            "charge": quote.charge,
            "credit": quote.credit,
            "days_left": quote.days.days_left,
            "days_in_period": quote.days.days_in_period,
            "change_day": quote.days.change_day,
            "period_end": quote.days.period_end,
            "description": str(quote.description),
        }
        return Response(ChangeQuoteSerializer(data).data)

    @extend_schema(request=ServiceSuspendSerializer, responses={202: ServiceActionResultSerializer})
    @action(detail=True, methods=["post"])
    def suspend(self, request, pk=None):
        service = self._service(request)
        form = ServiceSuspendSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        if request.user.is_staff:
            abuse = form.validated_data["reason"] == SuspendReason.ABUSE
            reason = StoredText(gettext_noop("suspended by staff for abuse")) if abuse else ""
            suspend_reason = form.validated_data["reason"]
            service_action_request(
                service=service, action=PanelAction.SUSPEND, by=request.user, reason=reason, suspend_reason=suspend_reason
            )
        else:
            service_client_request(service=service, action=PanelAction.SUSPEND, user=request.user, confirmed=form.validated_data["confirm"])
        return self._result(service.pk)

    @extend_schema(request=None, responses={202: ServiceActionResultSerializer})
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        """Resume a suspended service (a client: only one it suspended itself)."""
        service = self._service(request)
        if request.user.is_staff:
            service_action_request(service=service, action=PanelAction.RESUME, by=request.user)
        else:
            service_client_request(service=service, action=PanelAction.RESUME, user=request.user)
        return self._result(service.pk)

    @extend_schema(request=ServiceDeleteSerializer, responses={200: ServiceActionResultSerializer, 202: ServiceActionResultSerializer})
    @action(detail=True, methods=["post"], url_path="delete")
    def close(self, request, pk=None):
        """Delete the account (202, the panel deletes it), or cancel an unpaid order at once (200, nothing charged)."""
        service = self._service(request)
        form = ServiceDeleteSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        if request.user.is_staff:
            service_action_request(service=service, action=PanelAction.CLOSE, by=request.user)
        else:
            service_client_request(service=service, action=PanelAction.CLOSE, user=request.user, confirmed=form.validated_data["confirm"])
        return self._result(service.pk)

    @extend_schema(responses={200: PanelPasswordSerializer})
    @action(detail=True, methods=["get"])
    def password(self, request, pk=None):
        """The control panel password, for a token with the "secrets" scope of the service's own client.

        Staff get 403: the admin never shows a panel password (staff open the panel as the client instead).
        """
        if not has_scope(request, ApiScope.SECRETS):
            raise PermissionDenied(_("Panel passwords need a token with the “secrets” scope."))
        if request.user.is_staff:
            raise PermissionDenied(_("Panel passwords are shown to the service's client only."))
        service = self.get_object()
        password = Service.objects.values_list("panel_password", flat=True).get(pk=service.pk)
        if is_unreadable(password):
            raise ApiError(_("The password cannot be read at the moment. Please contact support."), code="password_unreadable", status=400)
        if not password or service.status == ServiceStatus.DELETED:
            raise ApiError(_("This service has no control panel password."), code="no_password", status=400)
        return Response({"panel_username": service.panel_username, "password": str(password)})
