"""The real openai SDK (sync and async, streamed and not) against a live daphne."""

from __future__ import annotations

import asyncio
import time

import openai
import pytest

from tests.support.browser_models import set_script
from tests.support.live_server import USERNAME, scripted_live_server


@pytest.fixture(scope="module")
def server(tmp_path_factory, script_file):  # script_file: tests/conftest.py's
    with scripted_live_server(tmp_path_factory.mktemp("openai"), script_file) as live:
        code = (
            "from django.contrib.auth import get_user_model; from streaming.models import ApiKey;"
            f"print(ApiKey.issue(get_user_model().objects.get(username={USERNAME!r}), 'sdk')[1])"
        )
        live.key = live.manage("shell", "-c", code).stdout.strip().splitlines()[-1]
        yield live


def client(server, key=None) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.base}/v1", api_key=key or server.key, max_retries=0)


MESSAGES = [{"role": "user", "content": "Hoe zwaar mag ik tillen?"}]


def test_streamed_chunks_arrive_spread_over_time(server, script_file):
    set_script(script_file, deltas=["Til ", "maximaal ", "23 kg [1]", "."], delay=0.2)
    arrivals = []
    stream = client(server).chat.completions.create(
        model="evi-specialist", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    usage = None
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        if chunk.choices and chunk.choices[0].delta.content:
            arrivals.append((time.monotonic(), chunk.choices[0].delta.content))
    text = "".join(t for _, t in arrivals)
    assert text.startswith("Til maximaal 23 kg [1].\n\n**Bronnen**\n- [1] ")
    model_parts = arrivals[:4]
    assert [t for _, t in model_parts] == ["Til ", "maximaal ", "23 kg [1]", "."]
    # Streamed, not buffered: the model wrote them 0.6 s apart in all, a buffered answer would
    # arrive at once. (The whole spread, not each gap: on a busy machine one late delta can
    # arrive right before the next.)
    assert model_parts[-1][0] - model_parts[0][0] > 0.3
    assert usage is not None and usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_non_streamed_completion(server, script_file):
    set_script(script_file, deltas=["Til ", "max 23 kg [1]."])
    completion = client(server).chat.completions.create(model="evi-specialist", messages=MESSAGES)
    assert completion.choices[0].message.content.startswith("Til max 23 kg [1].\n\n**Bronnen**")
    assert completion.choices[0].finish_reason == "stop"


def test_async_client_streams_too(server, script_file):
    set_script(script_file, deltas=["What ", "a ", "question."], delay=0.01)

    async def run():
        sdk = openai.AsyncOpenAI(base_url=f"{server.base}/v1", api_key=server.key, max_retries=0)
        stream = await sdk.chat.completions.create(
            model="evi-specialist",
            messages=[{"role": "user", "content": "What is the noise limit?"}],
            stream=True,
        )
        return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    assert (asyncio.run(run())).startswith("What a question.")


def test_an_upstream_failure_is_the_sdks_exception_with_our_message(server, script_file):
    set_script(script_file, deltas=["Eerst ", "dit ", "dat"], fail_after=2)
    with pytest.raises(openai.APIError, match="busy"):
        for _ in client(server).chat.completions.create(
            model="evi-specialist", messages=MESSAGES, stream=True
        ):
            pass
    with pytest.raises(openai.InternalServerError, match="busy"):
        client(server).chat.completions.create(model="evi-specialist", messages=MESSAGES)


def test_bad_requests_and_bad_keys_are_the_sdks_exceptions(server):
    with pytest.raises(openai.AuthenticationError):
        client(server, key="evi_revoked-or-wrong").models.list()
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        client(server).chat.completions.create(model="gpt-4o", messages=MESSAGES)
    with pytest.raises(openai.BadRequestError, match="n=1"):
        client(server).chat.completions.create(model="evi-specialist", messages=MESSAGES, n=2)
    assert [m.id for m in client(server).models.list()] == ["evi-specialist"]


def test_the_sdk_parses_the_annotations(server, script_file):
    from openai.types.chat.chat_completion_message import Annotation

    set_script(script_file, deltas=["Til ", "max 23 kg [", "1]."])
    message = (
        client(server).chat.completions.create(model="evi-specialist", messages=MESSAGES).choices[0].message
    )
    (annotation,) = message.annotations  # typed by the SDK: Annotation / AnnotationURLCitation
    span = annotation.url_citation
    assert annotation.type == "url_citation" and message.content[span.start_index : span.end_index] == "[1]"
    assert span.url.startswith(("http://", "https://")) and span.title

    stream = client(server).chat.completions.create(model="evi-specialist", messages=MESSAGES, stream=True)
    content, streamed = "", []
    for chunk in stream:
        if chunk.choices:
            delta = chunk.choices[0].delta
            content += delta.content or ""
            # The SDK's ChoiceDelta has no annotations field (yet): it keeps them as extra data.
            streamed += [
                Annotation.model_validate(a) for a in (delta.model_extra or {}).get("annotations", [])
            ]
    assert streamed == [annotation] and content == message.content
