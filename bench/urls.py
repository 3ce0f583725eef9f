from django.http import HttpResponse
from django.urls import path

from config.urls import urlpatterns as app_urlpatterns


def noop(request):
    """Through every middleware, to no database: what a request costs before any work."""
    return HttpResponse(b'{"ok": true}', content_type="application/json")


urlpatterns = [path("bench/noop", noop), *app_urlpatterns]
