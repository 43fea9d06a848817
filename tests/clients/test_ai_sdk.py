"""The AI SDK's own client against a live server: the `ai` npm package (DefaultChatTransport,
readUIMessageStream, reconnectToStream), run by Node from tests/clients/ai-sdk/ (package.json and
its committed package-lock.json; tests/support/npm.py's `npm ci` installs node_modules once,
when missing or out of date). Text, sources, metadata, a refusal, a failure, resume after a
reload, and stop."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import npm
from tests.support.live_server import LiveServer, scripted_live_server

CLIENT = Path(__file__).parent / "ai-sdk"
NODE, _ = npm.require_node()


@pytest.fixture(scope="session")
def node_client() -> Path:
    out = subprocess.run([NODE, "--version"], capture_output=True, text=True, check=True).stdout
    major = int(out.strip().lstrip("v").split(".")[0])
    if major < 20:
        pytest.skip(f"the AI SDK's client needs Node 20 or later (this is Node {major})")
    npm.install(CLIENT)  # from the npm registry, the versions the lockfile pins
    return CLIENT


# script_file: tests/conftest.py's fixture, what the scripted model answers.
@pytest.fixture(scope="module")
def server(tmp_path_factory, script_file) -> Iterator[LiveServer]:
    documents = {
        "tillen.md": "---\ntitle: Kwartelkisten\nurl: https://kb.example/kwartelkisten\nlanguage: nl\n---\n"
        "# Kwartelkisten\n\nEen kwartelkist tilt de werknemer altijd met twee personen.\n",
        "tilhulp.md": "---\ntitle: Kwartelkist intern\nlanguage: nl\n---\n# Kwartelkist intern\n\n"
        "Voor een kwartelkist gebruikt de werknemer een kwartelkistlift.\n",
    }
    with scripted_live_server(
        tmp_path_factory.mktemp("ai-sdk"), script_file, documents, EVI360_STREAM_TIMEOUT="60"
    ) as live:
        yield live


def run_client(node_client: Path, server: LiveServer, scenario: str, chat_id: str, **env: str) -> dict:
    done = subprocess.run(
        [NODE, "client.mjs", scenario],
        cwd=node_client,
        env={**os.environ, "BASE_URL": server.base, "TOKEN": server.token(), "CHAT_ID": chat_id, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_cited_dutch_answer_with_its_sources_and_metadata(node_client, server, script_file):
    script_file.write_text(
        json.dumps({"deltas": ["Til ", "max 23 kg [1]", " en gebruik ", "een tilhulp [2]", "."]})
    )
    seen = run_client(
        node_client, server, "answer", "aiSdkChat000001", QUESTION="Hoe til ik een kwartelkist?"
    )
    assert seen.get("error") is None and seen["unhandled"] == []
    message = seen["message"]
    assert message["role"] == "assistant"
    (text,) = [p for p in message["parts"] if p["type"] == "text"]
    assert text["text"] == "Til max 23 kg [1] en gebruik een tilhulp [2]." and text["state"] == "done"
    sources = {p["sourceId"]: p for p in message["parts"] if p["type"].startswith("source-")}
    assert set(sources) == {"1", "2"}
    by_title = {p["title"]: p for p in sources.values()}
    assert by_title["Kwartelkisten"]["type"] == "source-url"
    assert by_title["Kwartelkisten"]["url"] == "https://kb.example/kwartelkisten"
    internal = by_title["Kwartelkist intern"]
    assert internal["type"] == "source-document"  # no URL of its own: our page is in the metadata
    assert internal["providerMetadata"]["evi360"]["page"].startswith(f"{server.base}/sources/")
    # The sources come before the text that cites them.
    types = seen["types"]
    assert types[0] == "start" and types[-1] == "finish"
    first_text = types.index("text-delta")
    assert types.index("source-url") > first_text  # "Til " went out before any marker
    metadata = message["metadata"]  # start's and finish's, merged by the client
    assert metadata["language"] == "nl" and metadata["sessionId"] == message["id"]
    assert metadata["model"] == "function:scripted"
    assert set(metadata["usage"]) == {"inputTokens", "outputTokens"} and metadata["ttftMs"] >= 0


def test_a_refusal_is_the_transports_api_error_with_our_json(node_client, server):
    seen = run_client(node_client, server, "refused", "unused")
    assert seen["statusCode"] == 400 and seen["body"]["error"]["code"] == "invalid_chat_id"


def test_a_failure_is_an_error_in_the_users_language(node_client, server, script_file):
    script_file.write_text(json.dumps({"deltas": ["Eerst ", "dit"], "fail_after": 1}))
    seen = run_client(
        node_client, server, "answer", "aiSdkChat000002", QUESTION="Hoe til ik een kwartelkist?"
    )
    assert seen["error"] == "Het taalmodel is nu bezet of onbereikbaar. Probeer het zo meteen opnieuw."
    assert seen["types"][-1] == "error"
    assert seen["unhandled"] == []
    script_file.write_text(json.dumps({"deltas": ["First ", "this"], "fail_after": 1}))
    seen = run_client(node_client, server, "answer", "aiSdkChat000003", QUESTION="How heavy may I lift?")
    assert "busy" in seen["error"]


def test_nothing_to_resume_is_null(node_client, server):
    assert run_client(node_client, server, "idle", "neverAskedChat01") == {"stream": None, "unhandled": []}


def test_resume_after_a_reload_replays_the_running_answer_and_stop_stops_it(node_client, server, script_file):
    # Slow enough that the answer is still running while the client reloads and stops it.
    deltas = ["Til ", "max 23 kg [1]", *[f" woord{i}" for i in range(60)], "."]
    script_file.write_text(json.dumps({"deltas": deltas, "delay": 0.2}))
    seen = run_client(
        node_client, server, "resume", "aiSdkChat000004", QUESTION="Hoe til ik een kwartelkist?"
    )
    assert seen["before"][0] == "start" and seen["before"][-1] == "text-delta"
    replayed = seen["replayed"]
    # From its start again (the SDK's resumeStreamIsReplay), the source before its text.
    assert replayed[:2] == ["start", "text-start"] and replayed.count("source-url") == 1
    assert seen["text"].startswith("Til max 23 kg [1] woord0")
    assert seen["stopped"]["status"] == 202 and seen["stopped"]["body"]["status"] == "cancelling"
    assert seen["last"] == {"type": "abort", "reason": "Het antwoord is gestopt voordat het af was."}
    assert "woord59" not in seen["text"]
    assert seen["afterStop"] is None  # nothing runs any more: 204
