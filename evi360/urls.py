from django.contrib import admin
from django.urls import include, path

from streaming import views as streaming_views

urlpatterns = [
    path("", streaming_views.chat, name="chat"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
]
