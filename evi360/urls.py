from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from evi360.errors import JSONErrorsMixin, api_not_found

# JSON under /api/ (ours) and /v1/ (OpenAI's), Django's pages elsewhere.
handler400 = "evi360.errors.handler400"
handler403 = "evi360.errors.handler403"
handler404 = "evi360.errors.handler404"
handler500 = "evi360.errors.handler500"


class SchemaView(JSONErrorsMixin, SpectacularAPIView):
    pass


class DocsView(JSONErrorsMixin, SpectacularSwaggerSplitView):
    pass


urlpatterns = [
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("", include("streaming.urls")),
    # OpenAPI 3.1 and its interactive docs (Swagger UI), served from our own static files.
    # (Not ReDoc: drf-spectacular's page for it loads fonts from Google.)
    path("api/schema/", SchemaView.as_view(), name="api_schema"),
    # The split view serves its init script from /api/docs/?script, not inline (the CSP allows no
    # inline script); templates/api_docs.html takes its inline <style> to a stylesheet.
    path(
        "api/docs/",
        DocsView.as_view(url_name="api_schema", template_name="api_docs.html"),
        name="api_docs",
    ),
    # JSON, not Django's HTML (or DEBUG) page, for any other path under /api/ and /v1/.
    re_path(r"^api/", api_not_found),
    re_path(r"^v1/", api_not_found),
]
