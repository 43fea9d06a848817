"""Links to the web package's own pages from elsewhere: the APIs cite a source without a URL of
its own by our page of it (``views.source_page``), at the cited passage."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest
from django.urls import reverse

# The absolute URL of our own page of a source with the cited passage (a chunk id, or None)
# highlighted, built from the request.
SourcePage = Callable[[int, int | None], str]


def source_page(request: HttpRequest) -> SourcePage:
    """Our page of a source at its cited passage, absolute (annotations are read outside this site)."""

    def url(source_id: int, chunk_id: int | None) -> str:
        page = reverse("source_page", args=[source_id])
        if chunk_id is not None:
            page += f"?passage={chunk_id}#passage-{chunk_id}"
        return request.build_absolute_uri(page)

    return url
