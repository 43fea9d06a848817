"""The product's routes: the chat page and API-key pages, the OpenAI-compatible API, health and
metrics, and the REST API (auth, streams, sessions, conversations, the AI SDK's chat)."""

from django.urls import path
from rest_framework_simplejwt.views import TokenRefreshView

from streaming.aisdk import views as aisdk
from streaming.api import accounts, feedback, sessions, streams
from streaming.monitoring import health
from streaming.openai import views as openai
from streaming.web import views as web

urlpatterns = [
    path("", web.chat, name="chat"),
    path("settings/keys/", web.api_keys, name="api_keys"),
    path("sources/<str:pk>", web.source_page, name="source_page"),
    path("v1/models", openai.models, name="openai_models"),
    path("v1/chat/completions", openai.chat_completions, name="openai_chat_completions"),
    path("metrics", health.metrics_view, name="metrics"),
    path("healthz", health.healthz, name="healthz"),
    path("api/v1/auth/token/", accounts.TokenObtainView.as_view(), name="token_obtain"),
    path("api/v1/auth/token/refresh/", TokenRefreshView.as_view(), name="token_refresh"),
    path("api/v1/auth/logout/", accounts.LogoutView.as_view(), name="token_logout"),
    path("api/v1/stream/query", streams.stream_query, name="stream_query"),
    path("api/v1/stream/sessions/", streams.sessions, name="session_list"),
    path("api/v1/stream/sessions/<uuid:pk>", streams.session_detail, name="session_detail"),
    path("api/v1/stream/sessions/<uuid:pk>/events", streams.session_events, name="session_events"),
    path("api/v1/stream/sessions/<uuid:pk>/feedback", feedback.feedback, name="session_feedback"),
    path("api/v1/chat", aisdk.chat, name="aisdk_chat"),
    path("api/v1/chat/<str:chat_id>/stream", aisdk.chat_stream, name="aisdk_chat_stream"),
    path("api/v1/chat/<str:chat_id>/stop", aisdk.chat_stop, name="aisdk_chat_stop"),
    path("api/v1/conversations/", sessions.ConversationList.as_view(), name="conversation_list"),
    path("api/v1/conversations/<uuid:pk>", sessions.ConversationDetail.as_view(), name="conversation_detail"),
]
