from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework_simplejwt.views import TokenRefreshView

from evi360.errors import JSONErrorsMixin, api_not_found
from streaming.api import accounts, sessions, streams
from streaming.monitoring import health as monitoring
from streaming.openai import views as openai_api
from streaming.web import views as streaming_views

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
    path("", streaming_views.chat, name="chat"),
    path("settings/keys/", streaming_views.api_keys, name="api_keys"),
    path("v1/models", openai_api.models, name="openai_models"),
    path("v1/chat/completions", openai_api.chat_completions, name="openai_chat_completions"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("metrics", monitoring.metrics_view, name="metrics"),
    path("healthz", monitoring.healthz, name="healthz"),
    path("api/v1/auth/token/", accounts.TokenObtainView.as_view(), name="token_obtain"),
    path("api/v1/auth/token/refresh/", TokenRefreshView.as_view(), name="token_refresh"),
    path("api/v1/auth/logout/", accounts.LogoutView.as_view(), name="token_logout"),
    path("api/v1/stream/query", streams.stream_query, name="stream_query"),
    path("api/v1/stream/sessions/", streams.sessions, name="session_list"),
    path("api/v1/stream/sessions/<uuid:pk>", streams.session_detail, name="session_detail"),
    path("api/v1/stream/sessions/<uuid:pk>/events", streams.session_events, name="session_events"),
    path("api/v1/conversations/", sessions.ConversationList.as_view(), name="conversation_list"),
    path("api/v1/conversations/<uuid:pk>", sessions.ConversationDetail.as_view(), name="conversation_detail"),
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
