"""The API's public part: who am I, and the tariffs on offer with their prices and resources."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, viewsets
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.api.models import ApiToken
from billing.api.permissions import ScopePermission, request_scopes
from billing.models import TariffPlan, TariffPrice, TariffResource
from billing.selectors import shop_tariffs


class TariffPriceSerializer(serializers.ModelSerializer):
    class Meta:
        model = TariffPrice
        fields = ["period", "price"]


class TariffResourceSerializer(serializers.ModelSerializer):
    class Meta:
        model = TariffResource
        fields = ["kind", "included", "unit_price", "max_quantity"]


class TariffSerializer(serializers.ModelSerializer):
    prices = TariffPriceSerializer(many=True, read_only=True)
    resources = TariffResourceSerializer(many=True, read_only=True)

    class Meta:
        model = TariffPlan
        fields = ["id", "name", "description", "product_type", "currency", "setup_fee", "allow_dedicated_ip", "prices", "resources"]


class TariffViewSet(viewsets.ReadOnlyModelViewSet):
    """The tariffs the shop-window offers; anyone may read them."""

    serializer_class = TariffSerializer
    permission_classes = [AllowAny, ScopePermission]
    filterset_fields = ["product_type", "currency"]
    ordering_fields = ["id", "name"]

    def get_queryset(self):
        return shop_tariffs()


class MeSerializer(serializers.Serializer):
    user = serializers.CharField()
    is_staff = serializers.BooleanField()
    client_id = serializers.IntegerField(allow_null=True)
    token = serializers.CharField(allow_null=True, help_text="The token's name; null for a browser session.")
    scopes = serializers.ListField(child=serializers.CharField())


class MeView(APIView):
    @extend_schema(responses=MeSerializer, operation_id="me")
    def get(self, request):
        token = request.auth if isinstance(request.auth, ApiToken) else None
        client = request.user.clients.order_by("pk").first()
        return Response(
            {
                "user": request.user.get_username(),
                "is_staff": request.user.is_staff,
                "client_id": client.pk if client else None,
                "token": token.name if token else None,
                "scopes": sorted(request_scopes(request)),
            }
        )
