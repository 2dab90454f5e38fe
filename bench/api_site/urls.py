from django.urls import path
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.urls import urlpatterns as site_urlpatterns


class Bare(APIView):
    """The least an API answer can be: the same middleware, token check, scopes and throttle, a constant body."""

    def get(self, request):
        return Response({"ok": True})


urlpatterns = [path("bench/bare-api", Bare.as_view()), *site_urlpatterns]
