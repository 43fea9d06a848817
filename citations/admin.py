from django.contrib import admin
from django.db.models import Count, F, Q
from django.utils.html import format_html

from . import embeddings
from .models import Chunk, ChunkVector, Source


class ChunkInline(admin.TabularInline):
    model = Chunk
    fields = ["position", "heading_path", "text", "vector_model"]
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
    list_display = ["source", "position", "heading_path", "vector_model"]
    list_filter = ["source__language", "vector__model"]
    search_fields = ["text", "heading_path", "source__title"]
    list_select_related = ["source", "vector"]
    readonly_fields = ["search_text", "vector_model"]

    @admin.display(description="vector")
    def vector_model(self, obj: Chunk) -> str:
        return _vector_of(obj)
