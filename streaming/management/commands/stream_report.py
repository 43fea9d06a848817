import json
import re
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from streaming.monitoring import stats

_SINCE = re.compile(r"(\d+)\s*([mhd])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


class Command(BaseCommand):
    help = "Summary of the stream log: counts, rates, time to first token and duration percentiles, errors."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--since", default="24h", help="window: e.g. 30m, 24h, 7d (default 24h)")
        parser.add_argument("--json", action="store_true", help="print JSON instead of text")

    def handle(self, *args: object, since: str, json: bool, **options: object) -> None:
        match = _SINCE.fullmatch(since.strip())
        if not match or int(match.group(1)) == 0:
            raise CommandError(f"--since {since!r}: use a number with m, h or d, e.g. 24h")
        until = timezone.now()
        summary = stats.summary(until - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))}), until)
        if json:
            self.stdout.write(_json_dumps(summary.as_dict()))
            return
        data = summary.as_dict()
        lines = [f"Streams since {since} ({data['since']} to {data['until']}): {summary.total}"]
        for status, rate in data["rates"].items():
            shown = "n/a" if rate is None else f"{rate * 100:.1f} %"
            lines.append(f"  {status:<10} {summary.by_status.get(status, 0):>7}  {shown}")
        lines.append(f"  active now {summary.active:>7}")
        lines.append(f"  past timeout {summary.over_timeout:>5}")
        for name, values in (("time to first token", data["ttft_ms"]), ("duration", data["duration_ms"])):
            shown = ", ".join(f"{p} {'n/a' if v is None else f'{v} ms'}" for p, v in values.items())
            lines.append(f"{name}: {shown}")
        if summary.errors:
            lines.append("errors: " + ", ".join(f"{code} {count}" for code, count in summary.errors))
        self.stdout.write("\n".join(lines))


def _json_dumps(data: dict) -> str:
    return json.dumps(data, indent=2)
