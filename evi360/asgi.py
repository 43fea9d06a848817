"""ASGI entry point: ``uvicorn evi360.asgi:application`` as deployed (daphne serves it too)."""

import gc
import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evi360.settings")
django.setup(set_prefix=False)  # what get_asgi_application() does, for our handler below

from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from evi360.errors import ASGIHandler  # noqa: E402
from evi360.proxies import ForwardedFor  # noqa: E402

# Django's own async static-files handler serves /static/ (one stylesheet, one script) without a
# sync middleware in the request path; a proxy in front may serve `collectstatic`'s copy instead.
# Around it, the client's address (REMOTE_ADDR for everything after) behind EVI360_TRUSTED_PROXIES,
# the same under uvicorn and daphne: both run without their own proxy-header handling.
_django = ForwardedFor(ASGIStaticFilesHandler(ASGIHandler()), settings.EVI360_TRUSTED_PROXIES)

from evi360.db import skip_request_started_hop  # noqa: E402
from streaming.api.responses import close_on_the_loop  # noqa: E402

skip_request_started_hop()
close_on_the_loop()


async def application(scope, receive, send):  # type: ignore[no-untyped-def]
    # With the Redis event log every worker listens for cancellations and looks for dead
    # workers' sessions; both start with the worker's first request (they need its event loop).
    if _shared_log is not None:
        _shared_log.ensure_started()
    # Servers install their signal handlers when they start serving (daphne's reactor, uvicorn):
    # the drain goes in front of them at the first request (a no-op after that).
    shutdown.take_over_signals(settings.EVI360_SHUTDOWN_GRACE)
    await _django(scope, receive, send)


# Load the language models now, not during the first request (about half a second).
from citations.language import warm_up  # noqa: E402
from streaming.engine import agent  # noqa: E402

warm_up()
# The embedding model: loaded (and, for a provider, reached) now, so a model that cannot embed
# stops the process here with the reason, like a bad setting.
from citations import embeddings  # noqa: E402

embeddings.check_at_start_up()
# And Pydantic AI's first run (its price tables, schemas), off the first user's time to first token.
try:
    agent.warm_up()
except Exception:  # a slower first answer, not a reason to refuse to start
    import logging

    logging.getLogger(__name__).exception("the agent's warm-up run failed")


def _mark_interrupted_streams() -> None:
    """Sessions a dead process left "streaming" become "interrupted" at every start-up (only those
    older than the timeout plus a margin, so another worker's live streams are never touched)."""
    import logging
    from datetime import timedelta

    from django.conf import settings
    from django.db import DatabaseError, connections

    from streaming.store.writes import mark_interrupted

    try:
        count = mark_interrupted(
            timedelta(seconds=settings.EVI360_STREAM_TIMEOUT + settings.EVI360_INTERRUPTED_MARGIN)
        )
    except DatabaseError as exc:  # not migrated yet, or the database is down: say so, start anyway
        logging.getLogger(__name__).warning("could not mark interrupted streams: %s", exc)
    else:
        if count:
            logging.getLogger(__name__).warning("%d interrupted stream session(s) marked", count)
    finally:
        connections.close_all()


_mark_interrupted_streams()


def _load_passage_vectors() -> None:
    """The passage vectors, read now rather than by the first question (the matrix is kept)."""
    import logging

    from django.db import DatabaseError, connections

    from citations.vectors import INDEX

    if not embeddings.enabled():
        return
    try:
        matrix = INDEX.current()
    except DatabaseError as exc:
        logging.getLogger(__name__).warning("could not load the passage vectors yet: %s", exc)
    else:
        logging.getLogger(__name__).info("%d passage vectors of %s loaded", len(matrix), matrix.model)
    finally:
        connections.close_all()


_load_passage_vectors()


# SIGTERM: finish or interrupt running streams before the server stops (streaming/engine/shutdown.py).
from streaming import eventlog  # noqa: E402
from streaming.engine import shutdown  # noqa: E402

_shared_log = eventlog.shared()

# Everything loaded so far (Django, Pydantic AI, the language models, …) lives as long as the
# process: move it out of the garbage collector's sight, so a full collection (which otherwise
# walks all of it, ~100 ms, in the middle of somebody's stream) only sees what requests made.
gc.collect()
gc.freeze()
