"""ASGI entry point: ``uvicorn evi360.asgi:application`` as deployed (daphne serves it too)."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evi360.settings")
django.setup(set_prefix=False)  # what get_asgi_application() does, for our handler below

# Only after django.setup(): these import models.
from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from evi360 import django_patches, startup  # noqa: E402
from evi360.errors import ASGIHandler  # noqa: E402
from evi360.proxies import ForwardedFor  # noqa: E402
from streaming import eventlog  # noqa: E402
from streaming.engine import shutdown  # noqa: E402

django_patches.apply()

# Django's own async static-files handler serves /static/ (one stylesheet, one script) without a
# sync middleware in the request path; a proxy in front may serve `collectstatic`'s copy instead.
# Around it, the client's address (REMOTE_ADDR for everything after) behind EVI360_TRUSTED_PROXIES,
# the same under uvicorn and daphne: both run without their own proxy-header handling.
_django = ForwardedFor(ASGIStaticFilesHandler(ASGIHandler()), settings.EVI360_TRUSTED_PROXIES)
_shared_log = eventlog.shared()


async def application(scope, receive, send):  # type: ignore[no-untyped-def]
    # With the Redis event log every worker listens for cancellations and looks for dead
    # workers' sessions; both start with the worker's first request (they need its event loop).
    if _shared_log is not None:
        _shared_log.ensure_started()
    # Servers install their signal handlers when they start serving (daphne's reactor, uvicorn):
    # the drain goes in front of them at the first request (a no-op after that).
    shutdown.take_over_signals(settings.EVI360_SHUTDOWN_GRACE)
    await _django(scope, receive, send)


startup.start()
