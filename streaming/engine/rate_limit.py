"""The per-user rate limit of stream starts, counted in the shared cache (Redis when REDIS_URL
is set) with django-ratelimit's core: its decorator is sync-only."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.http import HttpRequest
from django_ratelimit import core as ratelimit

RATE_GROUP = "stream-query"


def count(request: HttpRequest) -> dict[str, Any] | None:
    """Count a start of the request's user; the usage (``should_limit``, ``time_left``)."""
    return ratelimit.get_usage(
        request, group=RATE_GROUP, key="user", rate=settings.EVI360_RATE_LIMIT, increment=True
    )


def refund(request: HttpRequest) -> None:
    """Give back the count of a start refused after it was counted (unknown conversation,
    concurrency cap): nothing ran, so it must not use up the user's rate limit. Counted first and
    given back, not checked first and counted after: two workers cannot both take the last one."""
    if not getattr(settings, "RATELIMIT_ENABLE", True):
        return
    # django-ratelimit has no call for this: its key is rebuilt as get_usage builds it.
    rate = settings.EVI360_RATE_LIMIT
    _, period = ratelimit._split_rate(rate)
    value = ratelimit._SIMPLE_KEYS["user"](request)
    window = ratelimit._get_window(value, period)
    key = ratelimit._make_cache_key(RATE_GROUP, window, rate, value, ratelimit.ALL)
    try:
        caches[getattr(settings, "RATELIMIT_USE_CACHE", "default")].decr(key)
    except ValueError:  # the window has turned meanwhile: the count it was in is gone
        pass
