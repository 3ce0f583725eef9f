from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.templatetags.static import static as static_url
from django.urls import include, path, register_converter
from django.views import defaults
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from core import errors
from core.converters import RowIdConverter
from core.health import healthz
from loyalty.admin.dashboard import points_liability_view

register_converter(RowIdConverter, "id")
# The admin's index links the manager's dashboard.
admin.site.index_template = "admin/loyalty/index.html"

urlpatterns = [
    path(
        "admin/dashboard/",
        admin.site.admin_view(points_liability_view),
        name="loyalty_dashboard",
    ),
    path("admin/", admin.site.urls),
    path("api/v1/auth/", include("accounts.api.urls")),
    path("api/v1/", include("loyalty.api.urls")),
    path("api/v1/", include("catalog.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("healthz", healthz, name="healthz"),
    # Browsers ask for it on every page without an icon of its own (the API docs).
    path("favicon.ico", RedirectView.as_view(url=static_url("accounts/favicon.svg"))),
]
# Reward images in development; production serves MEDIA_ROOT from its web server.
urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)


def handler400(request, exception=None):
    if request.path.startswith("/api/"):
        return errors.json_bad_request(request, exception)
    return defaults.bad_request(request, exception)


def handler404(request, exception=None):
    if request.path.startswith("/api/"):
        return errors.json_not_found(request, exception)
    return defaults.page_not_found(request, exception)


def handler500(request):
    if request.path.startswith("/api/"):
        return errors.json_server_error(request)
    return defaults.server_error(request)
