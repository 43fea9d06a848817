"""OpenAI's ``url_citation`` annotations on /v1/chat/completions: on the delta that carries the
marker (streamed), all on the message (not streamed), indexes pointing at ``[n]`` in the content."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import sync_to_async

from citations.models import Source
from streaming.models import ApiKey

pytestmark = pytest.mark.django_db(transaction=True)
URL = "/v1/chat/completions"
# Asks for every source of small_kb, so [1]..[3] all have one.
QUESTION = "Tillen, lawaai en beeldschermwerk: wat zijn de regels?"


@pytest.fixture
async def key(user):
    _key, raw = await sync_to_async(ApiKey.issue)(user, "tests")
    return raw


async def post(client, key, stream):
    data = {"model": "evi-specialist", "messages": [{"role": "user", "content": QUESTION}], "stream": stream}
    return await client.post(
        URL, json.dumps(data), content_type="application/json", headers={"Authorization": f"Bearer {key}"}
    )


async def streamed(client, key) -> list[dict]:
    response = await post(client, key, stream=True)
    raw = b"".join([c async for c in response.streaming_content]).decode()
    lines = [b.removeprefix("data: ") for b in raw.split("\n\n") if b.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    return [json.loads(line) for line in lines[:-1]]


def marked(content: str, annotation: dict) -> str:
    span = annotation["url_citation"]
    return content[span["start_index"] : span["end_index"]]


async def test_non_streamed_message_carries_every_annotation(small_kb, async_client, key, scripted_model):
    scripted_model(["Til ", "max 23 kg [1], ", "pauzeer [3] en ", "herhaal [1]."])
    data = (await post(async_client, key, stream=False)).json()
    message = data["choices"][0]["message"]
    content, annotations = message["content"], message["annotations"]
    # first appearances only; the model's [3] is shown as [2] (numbered by first appearance)
    assert [marked(content, a) for a in annotations] == ["[1]", "[2]"]
    assert annotations[0]["url_citation"]["start_index"] == content.index("[1]")
    sources = {c["marker"]: c for c in data["citations"]}
    for annotation, marker in zip(annotations, (1, 2), strict=True):
        assert annotation["type"] == "url_citation"
        assert annotation["url_citation"]["title"] == sources[marker]["title"]
    assert annotations[1]["url_citation"]["start_index"] == content.index("[2]")
    assert content.count("[1]") >= 3  # twice in the answer, once in the sources block


async def test_a_source_without_url_links_to_our_page(small_kb, async_client, key, scripted_model):
    scripted_model(["Pauzeer [1] [2] [3]."])
    data = (await post(async_client, key, stream=False)).json()
    annotations = data["choices"][0]["message"]["annotations"]
    urlless = await Source.objects.aget(url="")
    chunk = await urlless.chunks.afirst()
    page = f"http://testserver/sources/{urlless.pk}?passage={chunk.pk}#passage-{chunk.pk}"
    annotation = next(a for a in annotations if a["url_citation"]["title"] == urlless.title)
    assert annotation["url_citation"]["url"] == page  # our page, at the cited passage
    assert f"[{urlless.title}]({page})" in data["choices"][0]["message"]["content"]
    # An API key is no login: the page sends its reader to log in.
    assert (await async_client.get(page.removeprefix("http://testserver"))).status_code == 302
    others = [a["url_citation"]["url"] for a in annotations if a is not annotation]
    assert sorted(others) == ["https://kb.example/noise", "https://kb.example/tillen"]


async def test_streamed_annotations_ride_on_the_markers_delta(small_kb, async_client, key, scripted_model):
    # The marker split across upstream deltas is held back by the engine and sent whole.
    scripted_model(["Til ", "max 23 kg [", "1], pauzeer [2", "] en [1] [9]."])
    events = await streamed(async_client, key)
    content = ""
    annotations = []
    for event in events:
        if not event["choices"]:
            continue
        delta = event["choices"][0]["delta"]
        content += delta.get("content") or ""
        for annotation in delta.get("annotations", []):
            # Indexes into the whole content so far, on the delta that carries the marker.
            assert annotation["url_citation"]["end_index"] <= len(content)
            annotations.append(annotation)
    assert [marked(content, a) for a in annotations] == ["[1]", "[2]"]  # [9] has no source
    assert annotations[0]["url_citation"]["start_index"] == content.index("[1]")
    assert annotations[1]["url_citation"]["start_index"] == content.index("[2]")
    stop = next(e for e in events if e["choices"] and e["choices"][0]["finish_reason"])
    titles = {c["marker"]: c["title"] for c in stop["citations"]}
    assert [a["url_citation"]["title"] for a in annotations] == [titles[1], titles[2]]


async def test_an_answer_without_markers_has_no_annotations(small_kb, async_client, key, scripted_model):
    scripted_model(["Geen ", "bron."])
    data = (await post(async_client, key, stream=False)).json()
    assert data["choices"][0]["message"]["annotations"] == []
    events = await streamed(async_client, key)
    assert not any(e["choices"] and "annotations" in e["choices"][0]["delta"] for e in events)


def test_the_annotation_is_openais_shape():
    from openai.types.chat.chat_completion_message import Annotation

    from streaming.engine.events import CitationEvent
    from streaming.openai.stream import url_citation

    citation = CitationEvent(
        marker=12, source_id=7, title="T", url="javascript:alert(1)", snippet="", chunk_id=3
    )
    annotation = Annotation.model_validate(
        url_citation(citation, lambda i, passage: f"https://evi.example/sources/{i}?passage={passage}", 5)
    )
    assert annotation.url_citation.url == "https://evi.example/sources/7?passage=3"  # never a javascript: URL
    assert (annotation.url_citation.start_index, annotation.url_citation.end_index) == (5, 9)


def test_two_passages_of_one_document_get_distinct_urls():
    # OpenWebUI merges sources by URL and pairs its [n] with its n-th source: one URL per marker.
    from streaming.engine.events import CitationEvent
    from streaming.openai.stream import annotations_in

    def cited(marker: int, url: str, chunk: int) -> CitationEvent:
        return CitationEvent(marker=marker, source_id=1, title="T", url=url, snippet="", chunk_id=chunk)

    citations = {
        1: cited(1, "https://kb.example/tillen", 10),
        2: cited(2, "https://kb.example/tillen", 11),
        3: cited(3, "https://kb.example/noise", 12),
    }
    page = lambda i, passage: f"https://evi.example/sources/{i}?passage={passage}"  # noqa: E731
    urls = [a["url_citation"]["url"] for a in annotations_in("[2] [1] [3] [2]", 0, citations, set(), page)]
    # The first to arrive keeps the document's URL; the later passage gets its own fragment.
    assert urls == [
        "https://kb.example/tillen",
        "https://kb.example/tillen#passage-10",
        "https://kb.example/noise",
    ]
