from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, F, Q
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from . import embeddings, uploads
from .formats import SUFFIXES
from .models import Chunk, ChunkVector, Source, Upload


class ChunkInline(admin.TabularInline):
    model = Chunk
    fields = ["position", "page", "heading_path", "text", "vector_model"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def get_queryset(self, request):  # type: ignore[no-untyped-def]
        return super().get_queryset(request).select_related("vector")  # one query, not one a row

    @admin.display(description="vector")
    def vector_model(self, obj: Chunk) -> str:
        return _vector_of(obj)


def _vector_of(chunk: Chunk) -> str:
    try:
        vector = chunk.vector
    except ChunkVector.DoesNotExist:
        return "none"
    stale = "" if vector.model == embeddings.model_name() else " (not the configured model)"
    return f"{vector.model}, {vector.dimensions} dimensions{stale}"


class EmbeddingFilter(admin.SimpleListFilter):
    title = "embedding"
    parameter_name = "embedding"

    def lookups(self, request, model_admin):  # type: ignore[no-untyped-def]
        return [("complete", "every passage embedded"), ("incomplete", "passages to embed")]

    def queryset(self, request, queryset):  # type: ignore[no-untyped-def]
        if self.value() == "complete":
            return queryset.filter(embedded=F("chunk_count"))
        if self.value() == "incomplete":
            return queryset.exclude(embedded=F("chunk_count"))
        return queryset


@admin.register(Source)
class SourceAdmin(admin.ModelAdmin):
    list_display = ["title", "language", "embedding", "times_cited", "url", "loaded_at", "origin"]
    list_filter = ["language", EmbeddingFilter]
    search_fields = ["title", "origin", "url"]
    readonly_fields = ["origin", "content_hash", "loaded_at"]
    inlines = [ChunkInline]

    class Media:
        css = {"all": ["css/admin.css"]}  # no style attributes: the CSP allows none

    def get_queryset(self, request):  # type: ignore[no-untyped-def]
        return (
            super()
            .get_queryset(request)
            .annotate(
                times_cited=Count("citations", distinct=True),
                chunk_count=Count("chunks", distinct=True),
                embedded=Count(
                    "chunks__vector", filter=Q(chunks__vector__model=embeddings.model_name()), distinct=True
                ),
            )
        )

    @admin.display(description="times cited", ordering="times_cited")
    def times_cited(self, obj: Source) -> int:
        return obj.times_cited  # type: ignore[attr-defined]

    @admin.display(description="embedding", ordering="embedded")
    def embedding(self, obj: Source) -> str:
        """How many of the source's passages have a vector of the configured model."""
        done, total = obj.embedded, obj.chunk_count  # type: ignore[attr-defined]
        if not embeddings.enabled():
            return "dense retrieval off"
        state = "done" if done == total else "missing"  # colours: static/css/admin.css
        label = "all embedded" if done == total else f"{total - done} to embed"
        return format_html('<span class="embedding-{}">{}/{} · {}</span>', state, done, total, label)


@admin.register(Chunk)
class ChunkAdmin(admin.ModelAdmin):
    list_display = ["source", "position", "page", "heading_path", "vector_model"]
    list_filter = ["source__language", "vector__model"]
    search_fields = ["text", "heading_path", "source__title"]
    list_select_related = ["source", "vector"]
    readonly_fields = ["search_text", "vector_model"]

    @admin.display(description="vector")
    def vector_model(self, obj: Chunk) -> str:
        return _vector_of(obj)


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files in one field (Django's documented recipe: the widget allows many)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": ",".join(SUFFIXES)}))
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def clean(self, data, initial=None):  # type: ignore[no-untyped-def]
        single = super().clean
        if isinstance(data, list | tuple) and data:
            return [single(d, initial) for d in data]
        return [single(data or None, initial)]  # none chosen: the field's "required" error


class UploadForm(forms.Form):
    files = MultipleFileField(
        label="Files",
        help_text=f"{', '.join(SUFFIXES)}; a file with the name of an earlier upload replaces its source.",
    )


def _may_upload(request: HttpRequest) -> bool:
    return request.user.has_perm("citations.add_source")


@admin.register(Upload)
class UploadAdmin(admin.ModelAdmin):
    """Uploaded files and how their processing went; the upload form is a view of its own."""

    list_display = [
        "name",
        "status_label",
        "reason",
        "chunk_count",
        "source",
        "uploaded_by",
        "created_at",
        "finished_at",
    ]
    list_filter = ["status"]
    search_fields = ["name", "reason"]
    list_select_related = ["source", "uploaded_by"]
    fields = [
        "name",
        "size",
        "status",
        "reason",
        "chunk_count",
        "source",
        "uploaded_by",
        "attempts",
        "created_at",
        "claimed_at",
        "heartbeat_at",
        "finished_at",
    ]
    readonly_fields = fields
    change_list_template = "admin/citations/upload/change_list.html"

    class Media:
        css = {"all": ["css/admin.css"]}

    def has_view_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return _may_upload(request) or super().has_view_permission(request, obj)

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False  # rows come from the upload view, never from a blank form

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    @admin.display(description="status", ordering="status")
    def status_label(self, obj: Upload) -> str:
        return format_html('<span class="upload-{}">{}</span>', obj.status, obj.get_status_display())

    def get_urls(self) -> list[URLPattern]:
        upload = path("upload/", self.admin_site.admin_view(self.upload_view), name="citations_upload_upload")
        return [upload, *super().get_urls()]

    def changelist_view(self, request, extra_context=None):  # type: ignore[no-untyped-def]
        # Whoever watches the list restarts processing left over by a restarted process.
        waiting = uploads.waiting()
        if waiting:
            uploads.kick()
        busy = waiting or Upload.objects.filter(status=Upload.Status.PROCESSING).exists()
        context = {"may_upload": _may_upload(request), "refresh": busy, **(extra_context or {})}
        return super().changelist_view(request, extra_context=context)

    def upload_view(self, request: HttpRequest) -> HttpResponse:
        if not _may_upload(request):
            raise PermissionDenied
        form = UploadForm(request.POST, request.FILES) if request.method == "POST" else UploadForm()
        if form.is_bound and form.is_valid():
            rows = uploads.enqueue(form.cleaned_data["files"], request.user)
            queued = sum(1 for row in rows if row.status == Upload.Status.QUEUED)
            messages.success(request, f"{queued} of {len(rows)} file(s) queued for processing.")
            return HttpResponseRedirect(reverse("admin:citations_upload_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "title": "Upload guidelines",
            "opts": self.model._meta,
            "form": form,
            "max_mb": settings.EVI360_MAX_UPLOAD_MB,
        }
        return TemplateResponse(request, "admin/citations/upload/upload_form.html", context)
