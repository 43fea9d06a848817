from django.core.management.base import BaseCommand, CommandError, CommandParser

from citations import embeddings
from citations.services import embed_stale


class Command(BaseCommand):
    help = (
        "Give every knowledge-base passage lacking one a vector of the configured embedding model "
        "(EVI360_EMBEDDING_MODEL), e.g. after changing the model. --all embeds every passage anew. "
        "If embedding fails, nothing is written."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--all", action="store_true", help="embed every passage, not only those lacking a vector"
        )

    def handle(self, *args: object, all: bool, **options: object) -> None:
        if not embeddings.enabled():
            raise CommandError("dense retrieval is off (EVI360_EMBEDDING_MODEL=none): nothing to embed")
        try:
            count = embed_stale(everything=all)
        except embeddings.EmbeddingUnavailable as exc:
            raise CommandError(
                f"could not embed with {embeddings.model_name()}: {exc}; nothing was written"
            ) from None
        self.stdout.write(self.style.SUCCESS(f"{count} chunks embedded with {embeddings.model_name()}"))
