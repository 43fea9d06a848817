from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand

from streaming.store.writes import mark_interrupted


class Command(BaseCommand):
    help = (
        "Mark sessions left 'streaming' by a process that died as 'interrupted' (those older than "
        "EVI360_STREAM_TIMEOUT + EVI360_INTERRUPTED_MARGIN). Run at start-up; safe to run any time."
    )

    def handle(self, *args: object, **options: object) -> None:
        count = mark_interrupted(
            timedelta(seconds=settings.EVI360_STREAM_TIMEOUT + settings.EVI360_INTERRUPTED_MARGIN)
        )
        self.stdout.write(f"{count} interrupted stream session(s) marked")
