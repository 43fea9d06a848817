"""Retake docs/images/dashboard.png: the admin's streaming dashboard over a week of demo data.

    .venv/bin/python tools/screenshots.py            # writes docs/images/dashboard.png
    .venv/bin/python tools/screenshots.py --out X.png

Serves the app with a live daphne (tests/support/live_server.py, its own SQLite file under a
temporary directory), fills it with demo sessions of every status and 👍/👎 feedback with
reasons and comments over seven days, then photographs /admin/.../dashboard/?window=7d with
Debian's Chromium through Playwright (tests/support/chromium.py).
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ADMIN, ADMIN_PASSWORD = "staff", "staff-pass-123456"
# (language, question, and the reasons and comment of a 👎 its answer may get)
QUESTIONS = [
    ("nl", "Hoe zwaar mag ik tillen volgens de richtlijn?", ["incorrect"], "De grens is 23 kg, niet 25 kg."),
    (
        "nl",
        "Wanneer moet de werkgever een RI&E laten toetsen?",
        ["incomplete"],
        "Mist de toetsing door een gecertificeerde deskundige.",
    ),
    (
        "nl",
        "Wat zijn de regels voor werken op hoogte met een ladder?",
        ["incomplete", "wrong_sources"],
        "Geen verwijzing naar het Arbobesluit.",
    ),
    (
        "nl",
        "Hoe lang mag een werknemer per dag beeldschermwerk doen?",
        ["wrong_sources"],
        "Citeert de richtlijn over tillen in plaats van beeldschermwerk.",
    ),
    (
        "nl",
        "Welke maatregelen gelden bij lawaai boven 80 dB(A)?",
        ["incorrect"],
        "Gehoorbescherming is pas verplicht vanaf 85 dB(A).",
    ),
    ("nl", "Wat moet er in een plan van aanpak na verzuim staan?", ["other"], ""),
    (
        "en",
        "What does the guideline say about night shifts for older workers?",
        ["wrong_language"],
        "Asked in English, answered in Dutch.",
    ),
    (
        "en",
        "Which protective equipment is required when handling solvents?",
        ["incomplete"],
        "Gloves only; no mention of respiratory protection.",
    ),
]
ERRORS = ["upstream_unavailable", "upstream_error", "internal"]


def fill(seed: int = 4) -> None:
    """Demo data in the database DATABASE_URL names (run in a child with the server's env)."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evi360.settings")
    django.setup()
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from streaming.models import AnswerFeedback, Rating, Status, StreamSession

    users = get_user_model()
    users.objects.create_superuser(ADMIN, password=ADMIN_PASSWORD)
    specialists = [users.objects.get_or_create(username=f"specialist{i}")[0] for i in range(6)]
    rng = random.Random(seed)
    now = timezone.now()
    outcomes = [Status.COMPLETED] * 88 + [Status.ERROR] * 5 + [Status.CANCELLED] * 4
    outcomes += [Status.TIMEOUT] * 2 + [Status.INTERRUPTED]
    sessions = []
    for _ in range(420):
        status = rng.choice(outcomes)
        language, question, _, _ = rng.choice(QUESTIONS)
        created = now - timedelta(days=rng.uniform(0, 7))
        ttft = None if status == Status.INTERRUPTED else int(rng.lognormvariate(6.2, 0.45))
        duration = 60_000 if status == Status.TIMEOUT else int(rng.lognormvariate(8.6, 0.5))
        sessions.append(
            StreamSession(
                user=rng.choice(specialists),
                query=question,
                language=language,
                model_name="anthropic:claude-sonnet-4-6",
                client_kind=rng.choice(["web"] * 6 + ["openai", "ai_sdk", "api"]),
                status=status,
                error_code={Status.ERROR: rng.choice(ERRORS), Status.COMPLETED: ""}.get(status, status),
                created_at=created,
                ttft_ms=ttft,
                duration_ms=duration,
                answer="…" if status == Status.COMPLETED else "",
            )
        )
    for seconds in (4, 9):  # two streams running now: the "active" card
        sessions.append(
            StreamSession(
                user=specialists[0],
                query=QUESTIONS[0][1],
                language="nl",
                model_name="anthropic:claude-sonnet-4-6",
                client_kind="web",
                status=Status.STREAMING,
                created_at=now - timedelta(seconds=seconds),
            )
        )
    StreamSession.objects.bulk_create(sessions)
    given = []
    for session in sessions:
        if session.status != Status.COMPLETED or rng.random() > 0.3:
            continue
        # More 👎 two and three days ago (a bad knowledge-base change, say): the rate chart has a shape.
        age = (now - session.created_at).days
        if rng.random() < (0.45 if age in (2, 3) else 0.15):
            reasons, comment = next(q[2:] for q in QUESTIONS if q[1] == session.query)
            given.append(
                AnswerFeedback(session=session, rating=Rating.DOWN, reasons=reasons, comment=comment)
            )
        else:
            given.append(AnswerFeedback(session=session, rating=Rating.UP))
    AnswerFeedback.objects.bulk_create(given)
    # created_at is auto_now_add: give each feedback a time a few minutes after its answer.
    for feedback in given:
        feedback.created_at = min(now, feedback.session.created_at + timedelta(minutes=rng.uniform(1, 20)))
    AnswerFeedback.objects.bulk_update(given, ["created_at"])


def shoot(out: Path) -> None:
    from tests.support.chromium import headless
    from tests.support.live_server import live_server

    fonts = subprocess.run(["fc-list"], capture_output=True, text=True, check=False).stdout
    if "emoji" not in fonts.lower():  # the dashboard's 👍/👎 are text: boxes without the font
        print("no emoji font: apt-get install fonts-noto-color-emoji for the 👍/👎 marks", file=sys.stderr)

    with tempfile.TemporaryDirectory(prefix="evi360-shots-") as workdir, live_server(Path(workdir)) as server:
        subprocess.run([sys.executable, __file__, "--fill"], env=server.env, cwd=ROOT, check=True)
        with headless() as browser:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            # The admin's navigation sidebar closed (its own setting), so the charts get the width.
            page.add_init_script("localStorage.setItem('django.admin.navSidebarIsOpen', 'false')")
            page.goto(
                f"{server.base}/admin/login/?next=/admin/streaming/streamsession/dashboard/%3Fwindow%3D7d"
            )
            page.fill("input[name=username]", ADMIN)
            page.fill("input[name=password]", ADMIN_PASSWORD)
            page.click("input[type=submit]")
            page.wait_for_selector("[data-testid=dashboard] #latest-down")
            page.screenshot(path=str(out), full_page=True)
    print(f"{out}: {out.stat().st_size // 1024} KB")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "dashboard.png")
    parser.add_argument("--fill", action="store_true", help=argparse.SUPPRESS)  # the child's part
    args = parser.parse_args()
    if args.fill:
        fill()
    else:
        shoot(args.out)


if __name__ == "__main__":
    main()
