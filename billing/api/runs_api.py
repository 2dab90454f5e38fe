"""The daily billing runs and the IPmanager sync runs (staff): read, and start a sync dry run.

A sync calls the panel, which never happens inside a web request: the API records the run and a task does the work.
"""

import django_filters
from django.db import transaction
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.response import Response

from billing.api.errors import ApiError
from billing.api.idempotency import idempotent
from billing.api.money_api import PERMISSIONS, created_range
from billing.models import BillingRun
from ipam_sync.models import IPmanagerIntegration, SyncRun
from ipam_sync.sync import SyncBusy, sync_ips_start
from ipam_sync.tasks import sync_ips_dry_run

BILLING_RUN_COUNTS = ["renewed", "notified", "suspended", "resumed", "deleted", "failed"]


class BillingRunCountsSerializer(serializers.ModelSerializer):
    class Meta:
        model = BillingRun
        fields = BILLING_RUN_COUNTS


class BillingRunSerializer(serializers.ModelSerializer):
    counts = BillingRunCountsSerializer(source="*", read_only=True, help_text="How many services each action touched.")

    class Meta:
        model = BillingRun
        fields = ["id", "day", "dry_run", "status", "started_at", "finished_at", "counts"]


class BillingRunFilter(django_filters.FilterSet):
    day_after = django_filters.DateFilter(field_name="day", lookup_expr="gte", label="On or after this day")
    day_before = django_filters.DateFilter(field_name="day", lookup_expr="lte", label="On or before this day")

    class Meta:
        model = BillingRun
        fields = ["status", "dry_run", "day_after", "day_before"]


class BillingRunViewSet(viewsets.ReadOnlyModelViewSet):
    """The daily billing runs (`manage.py billing_run`) with how many services each action touched."""

    serializer_class = BillingRunSerializer
    permission_classes = PERMISSIONS
    staff_permissions = {"list": "billing.view_billingrun", "retrieve": "billing.view_billingrun"}
    client_actions = set()
    filterset_class = BillingRunFilter
    ordering_fields = ["id", "day", "started_at"]
    queryset = BillingRun.objects.order_by("-day", "-pk")


class SyncRunSerializer(serializers.ModelSerializer):
    integration_name = serializers.CharField(source="integration.name", read_only=True)
    message = serializers.CharField(read_only=True, help_text="In the request's language.")

    class Meta:
        model = SyncRun
        fields = [
            "id",
            "integration",
            "integration_name",
            "status",
            "dry_run",
            "as_administrator",
            "listed",
            "released",
            "allocated",
            "skipped",
            "failed",
            "message",
            "started_at",
            "finished_at",
        ]


class SyncRunCreateSerializer(serializers.Serializer):
    integration = serializers.PrimaryKeyRelatedField(queryset=IPmanagerIntegration.objects.all())


class SyncRunFilter(django_filters.FilterSet):
    started_after, started_before = created_range("started_at")

    class Meta:
        model = SyncRun
        fields = ["integration", "status", "dry_run", "started_after", "started_before"]


class SyncRunViewSet(viewsets.ReadOnlyModelViewSet):
    """IPmanager address syncs (`manage.py sync_ips`); staff may start a dry run, which plans and changes nothing."""

    serializer_class = SyncRunSerializer
    permission_classes = PERMISSIONS
    staff_permissions = {
        "list": "ipam_sync.view_syncrun",
        "retrieve": "ipam_sync.view_syncrun",
        # Whoever manages the integration in the admin (checks its connection, probes the panel).
        "create": ("ipam_sync.view_syncrun", "ipam_sync.change_ipmanagerintegration"),
    }
    client_actions = set()
    filterset_class = SyncRunFilter
    ordering_fields = ["id", "started_at"]
    queryset = SyncRun.objects.select_related("integration").order_by("-started_at", "-pk")

    @extend_schema(
        request=SyncRunCreateSerializer,
        responses={202: SyncRunSerializer},
        description="Start a dry run of the integration's sync: the run is recorded as running at once and a task reads "
        "IPmanager's list and records the plan (nothing is changed). Poll `GET /sync-runs/{id}` or wait for `sync.finished`. "
        "Refused with 409 `sync_in_progress` while another run of the integration is under way.",
    )
    @idempotent
    def create(self, request):
        given = SyncRunCreateSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        try:
            run = sync_ips_start(integration=given.validated_data["integration"], dry_run=True)
        except SyncBusy:
            raise ApiError(_("A synchronization of this integration is already running."), code="sync_in_progress", status=409) from None
        transaction.on_commit(lambda: sync_ips_dry_run.enqueue(run.pk))
        return Response(SyncRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)
