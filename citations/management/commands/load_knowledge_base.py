from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from citations import embeddings
from citations.formats import SUFFIXES
from citations.loader import BUNDLED_CORPUS
from citations.services import Outcome, load_paths


class Command(BaseCommand):
    help = (
        f"Load knowledge-base files ({', '.join(SUFFIXES)}) or whole folders into the knowledge base. "
        "Without a path, loads the bundled sample corpus. Unchanged files are left alone; a changed "
        "file replaces its chunks; bad files are reported and skipped. Every passage lacking a vector "
        "of the configured embedding model (EVI360_EMBEDDING_MODEL) is embedded; if that fails, "
        "nothing is written."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="*", type=Path, help="files or folders (default: bundled corpus)")
        parser.add_argument(
            "--progress",
            action="store_true",
            help="show a file counter on stderr even when it is not a terminal (it is shown on one)",
        )

    def handle(
        self, *args: object, paths: list[Path], verbosity: int, progress: bool, **options: object
    ) -> None:
        # A counter, not a bar library: tqdm is no dependency of ours, and a log gets one line a file.
        show = verbosity >= 1 and (progress or self.stderr.isatty())

        def counter(done: int, total: int, path: Path) -> None:
            self.stderr.write(f"[{done}/{total}] read {path.name}")

        try:
            report = load_paths(paths or [BUNDLED_CORPUS], progress=counter if show else None)
        except embeddings.EmbeddingUnavailable as exc:
            raise CommandError(
                f"could not embed the passages with {embeddings.model_name()}: {exc}; "
                "the knowledge base is unchanged"
            ) from None
        if not report.results:
            raise CommandError(
                f"no knowledge-base files ({', '.join(SUFFIXES)}) found in: " + ", ".join(map(str, paths))
            )
        for path, outcome, detail in report.results:
            if outcome is Outcome.SKIPPED:
                self.stderr.write(self.style.WARNING(f"skipped {path}: {detail}"))
            elif verbosity >= 2 or (verbosity >= 1 and outcome is not Outcome.UNCHANGED):
                self.stdout.write(f"{outcome.value} {path} ({detail})")
        created, updated = report.count(Outcome.CREATED), report.count(Outcome.UPDATED)
        summary = (
            f"{created + updated} loaded ({created} created, {updated} updated), "
            f"{report.count(Outcome.UNCHANGED)} unchanged, {report.count(Outcome.SKIPPED)} skipped"
        )
        if embeddings.enabled():
            summary += f"; {report.embedded} chunks embedded with {embeddings.model_name()}"
            if report.reused:
                summary += f" ({report.reused} unchanged passages kept their vectors)"
        else:
            summary += "; dense retrieval off (EVI360_EMBEDDING_MODEL=none), nothing embedded"
        self.stdout.write(self.style.SUCCESS(f"knowledge base: {summary}"))
        skipped = [(path, detail) for path, outcome, detail in report.results if outcome is Outcome.SKIPPED]
        if skipped:
            self.stdout.write("skipped: " + "; ".join(f"{path.name} ({detail})" for path, detail in skipped))
