"""/api/v1/ (the router's resources), the OpenAPI schema and its interactive page.

Each resource module registers its viewsets on `router` here, one line each.
"""

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import SimpleRouter

from billing.api import catalog, errors, money_api, operations_api, runs_api, schema, services_api  # noqa: F401 (schema registers the bearer token's OpenAPI scheme)

router = SimpleRouter(trailing_slash=False)
router.register("tariffs", catalog.TariffViewSet, basename="tariff")
router.register("services", services_api.ServiceViewSet, basename="service")
router.register("operations", operations_api.OperationViewSet, basename="operation")
router.register("ip-assignments", operations_api.IPAssignmentViewSet, basename="ip-assignment")
router.register("clients", money_api.ClientViewSet, basename="client")
router.register("ledger", money_api.LedgerViewSet, basename="ledger")
router.register("payments", money_api.PaymentViewSet, basename="payment")
router.register("documents", money_api.DocumentViewSet, basename="document")
router.register("events", money_api.EventViewSet, basename="event")
router.register("billing-runs", runs_api.BillingRunViewSet, basename="billing-run")
router.register("sync-runs", runs_api.SyncRunViewSet, basename="sync-run")

urlpatterns = [
    path("v1/me", catalog.MeView.as_view(), name="api-me"),
    path("v1/balance", money_api.BalanceView.as_view(), name="api-balance"),
    path("v1/", include(router.urls)),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    # Last: an address under /api/ that nothing above matched answers a JSON 404, not the site's HTML page.
    re_path(r"", errors.UnknownPath.as_view(), name="api-unknown"),
]
