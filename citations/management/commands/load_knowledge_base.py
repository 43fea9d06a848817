from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from citations import embeddings
from citations.loader import BUNDLED_CORPUS
from citations.services import Outcome, load_paths


class Command(BaseCommand):
    help = (
        "Load Markdown (.md) and text (.txt) files or whole folders into the knowledge base. "
        "Without a path, loads the bundled sample corpus. Unchanged files are left alone; a changed "
        "file replaces its chunks; bad files are reported and skipped. Every passage lacking a vector "
        "of the configured embedding model (EVI360_EMBEDDING_MODEL) is embedded; if that fails, "
        "nothing is written."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="*", type=Path, help="files or folders (default: bundled corpus)")

    def handle(self, *args: object, paths: list[Path], verbosity: int, **options: object) -> None:
        try:
            report = load_paths(paths or [BUNDLED_CORPUS])
        except embeddings.EmbeddingUnavailable as exc:
            raise CommandError(
                f"could not embed the passages with {embeddings.model_name()}: {exc}; "
                "the knowledge base is unchanged"
            ) from None
        if not report.results:
            raise CommandError("no .md or .txt files found in: " + ", ".join(map(str, paths)))
        for path, outcome, detail in report.results:
            if outcome is Outcome.SKIPPED:
                self.stderr.write(self.style.WARNING(f"skipped {path}: {detail}"))
            elif verbosity >= 2 or (verbosity >= 1 and outcome is not Outcome.UNCHANGED):
                self.stdout.write(f"{outcome.value} {path} ({detail})")
        summary = ", ".join(f"{report.count(o)} {o.value}" for o in Outcome)
        if embeddings.enabled():
            summary += f"; {report.embedded} chunks embedded with {embeddings.model_name()}"
            if report.reused:
                summary += f" ({report.reused} unchanged passages kept their vectors)"
        else:
            summary += "; dense retrieval off (EVI360_EMBEDDING_MODEL=none), nothing embedded"
        self.stdout.write(self.style.SUCCESS(f"knowledge base: {summary}"))
