"""The chat page's streaming Markdown (static/js/markdown.js) under Node: every prefix of an answer,
rendered as the page renders it while streaming, shows no raw Markdown syntax, and the whole answer
renders as markdown-it renders it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from tests.support.browser_models import MARKDOWN_DELTAS
from tests.support.live_server import ROOT

if shutil.which("node") is None:
    pytest.skip(
        "node is not installed: these tests run the page's script under Node", allow_module_level=True
    )

ANSWERS = {
    "claude": "".join(MARKDOWN_DELTAS),
    "blocks": "- **Let op:** tekst\n- Tweede met `code` erin\n\n> Een citaat, **vet**\n\n### Kop drie\n\n"
    "Setext\n---\n\nEn *schuin* of _ook schuin_ in een zin.\n",
    "bare table": "Overzicht:\n\nA | B\n--- | :---:\n1 | 2\n3 | 4\n\nKlaar.",
    "inline": "Gebruik ~~nooit~~ **altijd** een `tilhulp`, zie [de richtlijn](https://example.org/x) "
    "en <https://example.org/y> [2].",
    "fence": "~~~\n| geen tabel |\n**geen vet**\n~~~\n\nNa de code.",
    "nested": "**Kort antwoord:** maximaal 23 kg.\n\n## Waarom\n\n- **Eerste punt:** met `code*ster` erin\n"
    "  - Genest *punt*\n- Tweede\n\n| **Vet** | `code` |\n|:-:|---|\n| *a* | [b](https://x.nl) |\n\n"
    "Tot slot a_b_c.",
    "steps": "1. **Stap een**: doe dit\n2. **Stap twee**: doe dat\n   ```bash\n   ls -la | grep x\n   ```\n"
    "3. Klaar\n\n---\n\n> **Let op:** dit",
}

# Markdown's syntax, that no prefix may show outside a code block.
RAW = re.compile(r"\*\*|__|~~|`|\||#|\]\(|<http|(^|\n)\s*([-*+>]|\d+\.)\s")


def rendered() -> dict[str, dict]:
    script = ROOT / "tests" / "support" / "markdown_prefixes.js"
    result = subprocess.run(
        ["node", str(script)],
        input=json.dumps(list(ANSWERS.values())),
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(zip(ANSWERS, json.loads(result.stdout), strict=True))


RENDERED = rendered() if shutil.which("node") else {}


@pytest.mark.parametrize("name", ANSWERS)
def test_no_prefix_shows_raw_syntax(name):
    shown = [(p["text"], p["prose"]) for p in RENDERED[name]["prefixes"] if RAW.search(p["prose"])]
    assert shown == [], shown[:3]


def test_an_open_code_fence_shows_its_code_as_it_comes():
    prefixes = RENDERED["fence"]["prefixes"]
    open_fence = [p for p in prefixes if p["text"].startswith("~~~\n") and p["text"].count("~~~") == 1]
    assert any("| geen tabel |" in "".join(p["code"]) for p in open_fence)
    assert not any("~" in "".join(p["code"]) for p in prefixes)  # the fence itself never shows


@pytest.mark.parametrize("name", ANSWERS)
def test_the_whole_answer_renders_as_markdown_it_renders_it(name):
    assert RENDERED[name]["same"]


def test_a_table_shows_once_its_delimiter_row_is_complete():
    prefixes = RENDERED["claude"]["prefixes"]
    first = next(p["text"] for p in prefixes if p["tables"])
    assert first.endswith("|---|---|\n")
    assert all(p["tables"] for p in prefixes[len(first) :])  # and stays
