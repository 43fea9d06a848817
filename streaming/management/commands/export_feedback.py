"""``manage.py export_feedback --since 30d --format jsonl|csv [--output FILE]``: the feedback on
answers for evaluation (streaming/store/feedback_export.py), to stdout or a file."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from streaming.api.sessions import parse_moment
from streaming.store import feedback_export

_AGO = re.compile(r"(\d{1,5})([dh])")


def parse_since(raw: str, now: datetime | None = None) -> datetime:
    """``Nd`` or ``Nh`` ago, or an ISO 8601 date or date-time; a ``CommandError`` otherwise."""
    raw = raw.strip()
    if match := _AGO.fullmatch(raw):
        amount, unit = int(match.group(1)), match.group(2)
        return (now or timezone.now()) - timedelta(**{"days" if unit == "d" else "hours": amount})
    if (moment := parse_moment(raw)) is None:
        raise CommandError(
            f"--since {raw!r}: use a number of days or hours (30d, 12h) or an ISO date (2026-11-01)"
        )
    return moment


class Command(BaseCommand):
    help = (
        "Export the feedback on answers (question, language, model, answer, cited sources with their "
        "passages, rating, reasons, comment) as JSON Lines or CSV, for evaluation."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--since", default="30d", help="feedback given since: 30d, 12h or an ISO date (default 30d)"
        )
        parser.add_argument("--format", default="jsonl", help="jsonl (default) or csv")
        parser.add_argument("--output", help="write to this file instead of stdout")

    def handle(self, *args: object, since: str, format: str, output: str | None, **options: object) -> None:
        if format not in feedback_export.FORMATS:
            raise CommandError(f"--format {format!r}: use one of {', '.join(feedback_export.FORMATS)}")
        rows = feedback_export.records(feedback_export.feedback_given(since=parse_since(since)))
        if output is None:
            count = feedback_export.write(rows, format, self.stdout)
        else:
            try:
                with Path(output).open("w", encoding="utf-8", newline="") as out:
                    count = feedback_export.write(rows, format, out)
            except OSError as exc:
                raise CommandError(f"--output {output!r}: {exc.strerror or exc}") from None
        # On stderr: stdout may be the export itself.
        self.stderr.write(f"{count} feedback record(s) exported.")
