"""ASGI entry point: ``daphne evi360.asgi:application``."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evi360.settings")

# Django's own async static-files handler serves /static/ (one stylesheet, one script) without a
# sync middleware in the request path; a proxy in front may serve `collectstatic`'s copy instead.
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

application = ASGIStaticFilesHandler(get_asgi_application())

# Load the language models now, not during the first request (about half a second).
from citations.language import warm_up  # noqa: E402

warm_up()
