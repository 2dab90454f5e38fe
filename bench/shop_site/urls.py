from django.http import HttpResponse
from django.urls import path

from billing.urls import urlpatterns as site_urlpatterns


def bare(request):
    """The least a Django page can be: the same middleware, no database, no template."""
    return HttpResponse("ok")


urlpatterns = [path("bench/bare/", bare), *site_urlpatterns]
