from django.contrib import admin
from django.db.models import Count

from .models import Chunk, Source


class ChunkInline(admin.TabularInline):
    model = Chunk
    fields = ["position", "heading_path", "text"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True


@admin.register(Source)
class SourceAdmin(admin.ModelAdmin):
    list_display = ["title", "language", "times_cited", "url", "loaded_at", "origin"]
    list_filter = ["language"]
    search_fields = ["title", "origin", "url"]
    readonly_fields = ["origin", "content_hash", "loaded_at"]
    inlines = [ChunkInline]

    def get_queryset(self, request):  # type: ignore[no-untyped-def]
        return super().get_queryset(request).annotate(times_cited=Count("citations"))

    @admin.display(description="times cited", ordering="times_cited")
    def times_cited(self, obj: Source) -> int:
        return obj.times_cited  # type: ignore[attr-defined]


@admin.register(Chunk)
class ChunkAdmin(admin.ModelAdmin):
    list_display = ["source", "position", "heading_path"]
    list_filter = ["source__language"]
    search_fields = ["text", "heading_path", "source__title"]
    list_select_related = ["source"]
    readonly_fields = ["search_text"]
