"""Panel operations and IP assignments.

Operations: staff read them all and act on failed ones (Retry, Mark resolved) with the admin's permission
(provisioning.change_operation). A client reads its own services' operations, as its service page lists them,
and may not retry or resolve (403): the staff queue is staff's.
IP assignments: read only; a client sees its own services' addresses, staff every one.
"""

import django_filters
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from billing.api.filters import AddressFilter, IdFilter
from billing.api.permissions import ScopePermission, StaffMayView, StaffOnly, own_rows, staff_may
from ipam_sync.models import IPAssignment
from provisioning.models import Operation
from provisioning.services import operation_resolve, operation_retry


class OperationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Operation
        fields = [
            "id",
            "service",
            "action",
            "status",
            "attempts",
            "next_attempt_at",
            "reason",
            "last_error",
            "result",
            "created_at",
            "started_at",
            "finished_at",
            "resolved_at",
        ]
        read_only_fields = fields

    def to_representation(self, operation):
        data = super().to_representation(operation)
        request = self.context.get("request")
        if request is not None and not request.user.is_staff:
            data["last_error"] = ""  # a panel's error may name internal hosts; the client area never shows it either
        return data


class OperationFilter(django_filters.FilterSet):
    service = IdFilter(field_name="service_id")

    class Meta:
        model = Operation
        fields = ["status", "action", "service"]


OPERATION_ADMIN_PERMISSION = "provisioning.change_operation"


class OperationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Panel operations: staff see all of them, a client its own services' (read only)."""

    queryset = Operation.objects.none()  # the model, for the schema; get_queryset reads the rows
    serializer_class = OperationSerializer
    permission_classes = [IsAuthenticated, ScopePermission, StaffMayView]
    staff_view_permissions = ("provisioning.view_operation", OPERATION_ADMIN_PERMISSION)
    filterset_class = OperationFilter
    ordering_fields = ["id", "created_at", "status"]
    ordering = ["-pk"]

    def get_queryset(self):
        # The password an operation sets is never shown: not read either.
        return own_rows(self.request, Operation.objects.defer("secret").order_by("-pk"), field="service__client")

    def _staff_action(self, request):
        if not staff_may(request, OPERATION_ADMIN_PERMISSION):
            raise PermissionDenied(_("You do not have permission to act on panel operations."))
        return self.get_object()

    @extend_schema(request=None, responses={202: OperationSerializer})
    @action(detail=True, methods=["post"], permission_classes=[IsAuthenticated, ScopePermission, StaffOnly])
    def retry(self, request, pk=None):
        """Put a failed operation back in the queue (202: the worker runs it)."""
        operation = operation_retry(operation=self._staff_action(request), by=request.user)
        return Response(OperationSerializer(operation).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses={200: OperationSerializer})
    @action(detail=True, methods=["post"], permission_classes=[IsAuthenticated, ScopePermission, StaffOnly])
    def resolve(self, request, pk=None):
        """Take a failed operation out of the staff queue: someone dealt with it by hand."""
        operation = operation_resolve(operation=self._staff_action(request), by=request.user)
        return Response(OperationSerializer(operation).data)


class IPAssignmentSerializer(serializers.ModelSerializer):
    status = serializers.SerializerMethodField(help_text="live: the service holds the address; released: it gave it back.")

    class Meta:
        model = IPAssignment
        fields = ["id", "service", "address", "ip_type", "status", "allocated_at", "released_at"]
        read_only_fields = fields

    def get_status(self, obj) -> str:
        return "live" if obj.released_at is None else "released"


class IPAssignmentFilter(django_filters.FilterSet):
    service = IdFilter(field_name="service_id")
    address = AddressFilter()
    status = django_filters.ChoiceFilter(choices=[("live", _("live")), ("released", _("released"))], method="filter_status")

    class Meta:
        model = IPAssignment
        fields = ["service", "address", "status"]

    def filter_status(self, queryset, name, value):
        return queryset.filter(released_at__isnull=value == "live")


class IPAssignmentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Dedicated addresses held or once held by services: a client's own, or every one for staff."""

    queryset = IPAssignment.objects.none()  # the model, for the schema; get_queryset reads the rows
    serializer_class = IPAssignmentSerializer
    permission_classes = [IsAuthenticated, ScopePermission, StaffMayView]
    staff_view_permissions = ("ipam_sync.view_ipassignment", "ipam_sync.change_ipassignment")
    filterset_class = IPAssignmentFilter
    ordering_fields = ["id", "allocated_at", "released_at"]
    ordering = ["-pk"]

    def get_queryset(self):
        return own_rows(self.request, IPAssignment.objects.order_by("-pk"), field="service__client")
