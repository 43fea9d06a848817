"""ASGI entry point: ``daphne evi360.asgi:application``."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evi360.settings")

application = get_asgi_application()
