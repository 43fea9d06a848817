from django.core.management.base import BaseCommand

from streaming.store.writes import mark_interrupted


class Command(BaseCommand):
    help = (
        "Mark sessions left 'streaming' by a process that died as 'interrupted' (those older than "
        "EVI360_STREAM_TIMEOUT + EVI360_INTERRUPTED_MARGIN). The server does it at start-up; safe "
        "to run any time."
    )

    def handle(self, *args: object, **options: object) -> None:
        count = mark_interrupted()
        self.stdout.write(f"{count} interrupted stream session(s) marked")
