from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from citations.loader import BUNDLED_CORPUS
from citations.services import Outcome, load_paths


class Command(BaseCommand):
    help = (
        "Load Markdown (.md) and text (.txt) files or whole folders into the knowledge base. "
        "Without a path, loads the bundled sample corpus. Unchanged files are left alone; a changed "
        "file replaces its chunks; bad files are reported and skipped."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="*", type=Path, help="files or folders (default: bundled corpus)")

    def handle(self, *args: object, paths: list[Path], verbosity: int, **options: object) -> None:
        report = load_paths(paths or [BUNDLED_CORPUS])
        if not report.results:
            raise CommandError("no .md or .txt files found in: " + ", ".join(map(str, paths)))
        for path, outcome, detail in report.results:
            if outcome is Outcome.SKIPPED:
                self.stderr.write(self.style.WARNING(f"skipped {path}: {detail}"))
            elif verbosity >= 2 or (verbosity >= 1 and outcome is not Outcome.UNCHANGED):
                self.stdout.write(f"{outcome.value} {path} ({detail})")
        summary = ", ".join(f"{report.count(o)} {o.value}" for o in Outcome)
        self.stdout.write(self.style.SUCCESS(f"knowledge base: {summary}"))
