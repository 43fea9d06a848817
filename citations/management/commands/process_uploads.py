import time

from django.core.management.base import BaseCommand, CommandParser

from citations import uploads


class Command(BaseCommand):
    help = (
        "Process the files uploaded in the admin (parse, chunk, embed, index), and retry once those "
        "left 'processing' by a worker that stopped. Runs until stopped, or with --once until none wait. "
        "Use it with EVI360_UPLOAD_WORKER=command; with 'thread' the web processes do it themselves."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="process what waits, then exit")
        parser.add_argument("--interval", type=float, default=2.0, help="seconds between looks (default 2)")

    def handle(self, *args: object, once: bool, interval: float, **options: object) -> None:
        while True:
            count = uploads.run_pending()
            if count:
                self.stdout.write(f"processed {count} upload(s)")
            if once:
                return
            time.sleep(interval)
