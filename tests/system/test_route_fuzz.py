"""Property-based fuzzing of every route the resolver knows (#18): hostile methods, bodies, query
strings and headers, as every kind of caller. Whatever is sent: no 500; under /api/ no HTML and
errors in our JSON shape, under /v1/ in OpenAI's; streams are well-formed SSE that end; and the
server is healthy afterwards. A route added to evi360/urls.py is fuzzed without touching this file.

tests/system/test_api_fuzz.py fuzzes the operations of the OpenAPI schema (input the schema describes);
this one fuzzes every route, those the schema leaves out too (admin, accounts, /metrics, /v1/, the
catch-alls), with input no schema allows. More examples: FUZZ_EXAMPLES=500 make test PYTEST_ARGS=tests/system/test_route_fuzz.py
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import quote

import pytest
from django.test import AsyncClient
from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.resolvers import RegexPattern, RoutePattern
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from streaming.models import ApiKey, Conversation
from tests.conftest import log_session

pytestmark = pytest.mark.django_db(transaction=True)

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "100"))
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
CALLERS = ["anonymous", "jwt", "api_key", "session", "session_csrf"]
MAX_STREAM_BYTES = 1_000_000

# --- the routes ---------------------------------------------------------------------------------

_PARAM = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<name>[^>]+)>")


@dataclass
class Route:
    """A URL pattern as the resolver holds it: literal text, converters and regexes, in order."""

    parts: list[tuple[str, str]] = field(default_factory=list)  # ("text"|converter|"regex", value)

    @property
    def template(self) -> str:
        return "".join(f"<{kind}>" if kind not in ("text", "regex") else value for kind, value in self.parts)


def _pattern_parts(pattern: object) -> list[tuple[str, str]]:
    if isinstance(pattern, RoutePattern):
        route, parts, last = str(pattern._route), [], 0
        for match in _PARAM.finditer(route):
            parts.append(("text", route[last : match.start()]))
            parts.append((match["converter"] or "str", match["name"]))
            last = match.end()
        return [*parts, ("text", route[last:])]
    if isinstance(pattern, RegexPattern):
        regex = str(pattern._regex)
        # A plain prefix ("^api/") is text; anything else is generated from the regex.
        plain = regex.removeprefix("^")
        if re.fullmatch(r"[\w/.-]*", plain):
            return [("text", plain)]
        return [("regex", regex)]
    raise AssertionError(f"an unknown kind of URL pattern: {pattern!r}")


def all_routes() -> list[Route]:
    routes: list[Route] = []

    def walk(patterns: list, prefix: list[tuple[str, str]]) -> None:
        for entry in patterns:
            parts = [*prefix, *_pattern_parts(entry.pattern)]
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, parts)
            else:
                assert isinstance(entry, URLPattern)
                routes.append(Route(parts))

    walk(get_resolver().url_patterns, [])
    return routes


KNOWN = {
    "",
    "healthz",
    "metrics",
    "settings/keys/",
    "v1/models",
    "v1/chat/completions",
    "api/v1/auth/token/",
    "api/v1/auth/token/refresh/",
    "api/v1/auth/logout/",
    "api/v1/stream/query",
    "api/v1/stream/sessions/",
    "api/v1/stream/sessions/<uuid>",
    "api/v1/stream/sessions/<uuid>/events",
    "api/v1/conversations/",
    "api/v1/conversations/<uuid>",
    "api/v1/chat",
    "api/v1/chat/<str>/stream",
    "api/v1/chat/<str>/stop",
    "api/schema/",
    "api/docs/",
    "api/",
    "v1/",
    "accounts/login/",
    "admin/",
    "admin/login/",
}


def test_the_enumeration_finds_every_known_route():
    templates = {route.template for route in all_routes()}
    assert KNOWN <= templates, KNOWN - templates
    assert len([t for t in templates if t.startswith("admin/")]) > 10  # the models' admin pages


# --- hostile input ------------------------------------------------------------------------------

DEEP = "[" * 2000 + "]" * 2000
DEEP_OBJECT = '{"a":' * 2000 + "1" + "}" * 2000
HUGE_DIGITS = "9" * 5000
HUGE_TEXT = "x" * 200_000
SURROGATE = "\\ud800"  # a JSON escape for a lone surrogate: valid JSON, not Unicode text
NUL = "\\u0000"

# Header values are latin-1 text on the wire (no CR/LF).
header_text = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=40
)
hostile_value = st.one_of(
    st.sampled_from(
        [
            "",
            "0",
            "-1",
            "1",
            "1.5",
            "1e400",
            HUGE_DIGITS,
            "2024-02-30",
            "9999-12-31T23:59:59-23:59",
            "0001-01-01",
            "nl",
            "en",
            "auto",
            "completed",
            "streaming",
            "null",
            "[]",
            "{}",
            "NaN",
        ]
    ),
    header_text,
)
raw_query_value = st.one_of(
    hostile_value.map(lambda v: quote(v, safe="")),
    st.sampled_from(["%00", "%ff%fe", "%ed%a0%80", "%", "%zz", "a%00b", "+" * 50]),
)
query_key = st.one_of(
    st.sampled_from(
        [
            "page",
            "page_size",
            "since",
            "until",
            "last_event_id",
            "status",
            "language",
            "script",
            "window",
            "next",
            "q",
            "o",
            "p",
            "format",
        ]
    ),
    st.text(
        st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="&=#%+"),
        min_size=1,
        max_size=8,
    ),
)
query_string = st.lists(st.tuples(query_key, raw_query_value), max_size=4).map(
    lambda pairs: "&".join(f"{quote(k, safe='')}={v}" for k, v in pairs)
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=10,
)
field_value = st.one_of(json_values, st.sampled_from([HUGE_TEXT, "", " ", "Hoe zwaar mag ik tillen?"]))
query_body = st.fixed_dictionaries(
    {"query": field_value},
    optional={"language": field_value, "conversation_id": field_value},
).map(json.dumps)
chat_body = st.fixed_dictionaries(
    {
        "model": st.sampled_from(["evi-specialist", "evi-specialist-offline", "gpt-4", ""]) | json_values,
        "messages": st.one_of(
            json_values,
            st.lists(
                st.fixed_dictionaries(
                    {
                        "role": st.sampled_from(["user", "system", "assistant", "tool", "x"]) | json_values,
                        "content": field_value,
                    }
                ),
                max_size=3,
            ),
        ),
    },
    optional={"stream": json_values, "n": json_values, "tools": json_values, "stream_options": json_values},
).map(json.dumps)
# The AI SDK's DefaultChatTransport body (/api/v1/chat), with every field also any JSON.
ui_part = st.fixed_dictionaries(
    {"type": st.sampled_from(["text", "file", "x"]) | json_values, "text": field_value}
)
ai_sdk_body = st.fixed_dictionaries(
    {
        "id": st.sampled_from(["abc123", "", "a/b", "x" * 200]) | json_values,
        "messages": st.one_of(
            json_values,
            st.lists(
                st.fixed_dictionaries(
                    {
                        "role": st.sampled_from(["user", "system", "assistant", "x"]) | json_values,
                        "parts": st.lists(ui_part, max_size=2) | json_values,
                    }
                ),
                max_size=3,
            ),
        ),
    },
    optional={
        "trigger": st.sampled_from(["submit-message", "regenerate-message"]) | json_values,
        "messageId": json_values,
    },
).map(json.dumps)
json_text = st.one_of(
    st.sampled_from(
        [
            DEEP,
            DEEP_OBJECT,
            '{"query": ' + HUGE_DIGITS + "}",
            '{"query": "' + SURROGATE + ' tillen"}',
            '{"query": "tillen' + NUL + '"}',
            '{"model": "evi-specialist", "messages": [{"role": "user", "content": "' + SURROGATE + '"}]}',
            '{"model": "evi-specialist", "messages": [{"role": "user", "content": "a' + NUL + '"}]}',
            '{"refresh": "' + SURROGATE + '"}',
            '{"username": "' + NUL + '", "password": "' + SURROGATE + '"}',
            '{"query": NaN}',
            "{",
            "",
            "null",
        ]
    ),
    json_values.map(json.dumps),
    query_body,
    chat_body,
    ai_sdk_body,
)
body_bytes = st.one_of(
    json_text.map(str.encode),
    st.sampled_from([b"\xff\xfe{", b'{"query": "\xed\xa0\x80"}', b"\x00" * 10, b"--x\r\n\r\n--x--"]),
    st.binary(max_size=64),
    st.lists(st.tuples(query_key, raw_query_value), max_size=4).map(
        lambda pairs: "&".join(f"{quote(k, safe='')}={v}" for k, v in pairs).encode()
    ),
)
content_type = st.sampled_from(
    [
        "application/json",
        "application/json; charset=latin-1",
        "application/json; charset=nope",
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data",
        "multipart/form-data; boundary=x",
        "text/event-stream",
        "application/xml",
        "a/b/c;;=",
        "",
    ]
)
accept = st.sampled_from(
    [
        "",
        "*/*",
        "application/json",
        "text/event-stream",
        "text/html",
        "application/xml",
        "text/html, application/json;q=0.1",
        "application/vnd.oai.openapi",
        "garbage;;q=x",
    ]
)


def raw_json(value: object) -> str:
    """JSON text of ``value``, its SURROGATE texts as the lone surrogate escapes they spell."""
    return json.dumps(value).replace(json.dumps(SURROGATE)[1:-1], SURROGATE)


@dataclass
class World:
    """The objects the fuzzer fills URL parameters and credentials with."""

    owned: list[str]
    others: list[str]
    user_pk: str
    jwt: str
    other_jwt: str
    api_key: str
    other_api_key: str


def path_strategy(route: Route, world: World) -> st.SearchStrategy[str]:
    ids = st.sampled_from(world.owned + world.others)
    filled = {
        "uuid": ids | st.uuids().map(str),
        "int": st.sampled_from([world.user_pk, "0", HUGE_DIGITS]) | st.integers(0, 10**20).map(str),
        "slug": st.from_regex(r"[-a-zA-Z0-9_]{1,20}", fullmatch=True),
        "str": ids
        | st.sampled_from([world.user_pk, "x"])
        | header_text.filter(bool).map(lambda t: quote(t, safe="")),
        "path": ids
        | st.sampled_from([world.user_pk, "a/b", "%00", "%ff"])
        | header_text.filter(bool).map(quote),
    }

    def part(kind: str, value: str) -> st.SearchStrategy[str]:
        if kind == "text":
            return st.just(value)
        if kind == "regex":
            return (
                st.from_regex(value.rstrip("$").removeprefix("^"), fullmatch=True)
                .filter(lambda s: s.isprintable())
                .map(lambda s: quote(s, safe="/"))
            )
        return filled[kind]

    parts = st.tuples(*(part(kind, value) for kind, value in route.parts)).map("".join)
    tail = st.sampled_from(["", "", "", "x", "nope/", "%ff", "../../etc/passwd"])
    return st.tuples(parts, tail).map(
        lambda pt: "/" + pt[0] + (pt[1] if route.template.endswith("/") else "")
    )


@dataclass
class Case:
    method: str
    path: str
    query: str
    body: bytes
    content_type: str
    headers: dict[str, str]


def case_strategy(routes: list[Route], world: World) -> st.SearchStrategy[Case]:
    authorization = st.one_of(
        st.none(),
        st.none(),
        st.sampled_from(
            [
                "",
                "Bearer",
                "Bearer ",
                "bearer  x",
                "Basic dXNlcjpwYXNz",
                "Token abc",
                "Bearer a.b.c",
                "Bearer " + "x" * 5000,
                f"Bearer {world.other_jwt}",
                f"Bearer {world.other_api_key}",
                f"Bearer {world.jwt} extra",
                f"BEARER {world.api_key}",
                "Bearer evi_" + "0" * 40,
            ]
        ),
        header_text.map(lambda t: "Bearer " + t),
        header_text,
    )
    headers = st.fixed_dictionaries(
        {},
        optional={
            "Last-Event-ID": hostile_value,
            "Accept": accept,
            "X-CSRFToken": st.sampled_from(["", "x", "a" * 64]) | header_text,
            "Origin": st.sampled_from(["null", "https://evil.example", "http://testserver"]),
            "Accept-Language": st.sampled_from(["nl", "en", "*", "xx-YY;q=2", ""]) | header_text,
        },
    )

    # As many cases for /api/, /v1/ and the pages as for the admin's many routes.
    families: dict[str, list[Route]] = {}
    for route in routes:
        family = next((p for p in ("api/", "v1/", "admin/") if route.template.startswith(p)), "")
        families.setdefault(family, []).append(route)
    by_family = st.one_of(*(st.sampled_from(members) for members in families.values()))

    @st.composite
    def build(draw: st.DrawFn) -> Case:
        route = draw(by_family)
        extra = draw(headers)
        auth = draw(authorization)
        if auth is not None:
            extra["Authorization"] = auth
        return Case(
            method=draw(st.sampled_from(METHODS)),
            path=draw(path_strategy(route, world)),
            query=draw(query_string),
            body=draw(body_bytes),
            content_type=draw(content_type),
            headers=extra,
        )

    # Near-valid requests as well: they get past the checks to a stream, whose body is checked.
    question = st.one_of(
        st.sampled_from(["Hoe zwaar mag ik tillen?", "noise at 85 dB?", " x ", "tillen " + SURROGATE]),
        st.text(max_size=30),
    )
    language = st.sampled_from(["nl", "en", "auto", None, "de", 1])
    conversation = st.sampled_from([None, *world.owned, *world.others, "x", str(uuid.UUID(int=0))])
    stream_body = st.builds(
        lambda q, lang, conv: raw_json({"query": q, "language": lang, "conversation_id": conv}),
        question,
        language,
        conversation,
    )
    chat = st.builds(
        lambda q, model, stream, usage: raw_json(
            {
                "model": model,
                "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": q}],
                "stream": stream,
                "stream_options": {"include_usage": usage},
            }
        ),
        question,
        st.sampled_from(["evi-specialist", "evi-specialist-offline"]),
        st.booleans(),
        st.booleans(),
    )
    near_valid = st.builds(
        lambda target, headers: Case("POST", target[0], "", target[1].encode(), "application/json", headers),
        st.one_of(
            st.tuples(st.sampled_from(["/api/v1/stream/query", "/api/v1/stream/sessions/"]), stream_body),
            st.tuples(st.just("/v1/chat/completions"), chat),
        ),
        st.fixed_dictionaries({}, optional={"Accept": accept, "Last-Event-ID": hostile_value}),
    )
    # And hostile JSON where JSON is read: the other strategies reach it only now and then.
    api_routes = [r for r in routes if r.template.startswith(("api/", "v1/"))]
    hostile_json = st.builds(
        lambda route_path, method, body, headers: Case(
            method, route_path, "", body.encode(), "application/json", headers
        ),
        st.sampled_from(api_routes).flatmap(lambda route: path_strategy(route, world)),
        st.sampled_from(["POST", "POST", "PUT", "PATCH", "DELETE"]),
        json_text,
        st.fixed_dictionaries({}, optional={"Accept": accept}),
    )
    return st.one_of(build(), near_valid, hostile_json)


# --- the checks ---------------------------------------------------------------------------------

_SSE_FIELD = re.compile(r"(?:(?:id|event|data|retry)(?:: ?.*)?|:.*)")


def assert_well_formed_sse(raw: bytes, path: str) -> None:
    text = raw.decode("utf-8")  # an SSE stream is UTF-8
    assert text.endswith("\n\n") or not text, text[-200:]
    for block in filter(None, text.split("\n\n")):
        for line in block.split("\n"):
            assert _SSE_FIELD.fullmatch(line), (path, line[:200])
    if path.startswith("/v1/") and text:
        assert text.endswith("data: [DONE]\n\n"), text[-200:]


def assert_in_family(case: Case, status: int, content_type: str, body: bytes) -> None:
    where = f"{case.method} {case.path}?{case.query[:200]} -> {status}"
    assert status < 500, (where, body[:500])
    if not case.path.startswith(("/api/", "/v1/")):
        return
    # Swagger UI is an HTML page by design; its errors are JSON all the same (JSONErrorsMixin).
    if case.path == "/api/docs/" and status < 300:
        return
    assert "text/html" not in content_type, (where, body[:500])
    if status < 400 or case.method == "HEAD":  # no body to a HEAD
        return
    assert content_type.startswith("application/json"), (where, content_type, body[:500])
    error = json.loads(body)["error"]
    keys = {"message", "type", "param", "code"} if case.path.startswith("/v1/") else {"code", "message"}
    assert set(error) == keys, (where, error)


async def send(client: AsyncClient, case: Case, authorization: str | None = None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = await client.generic(
        case.method,
        case.path + ("?" + case.query if case.query else ""),
        data=case.body,
        content_type=case.content_type,
        headers={**headers, **case.headers},  # the case's own Authorization, if any, instead
    )
    content_type = response.get("Content-Type", "")
    if response.streaming:
        chunks, size = [], 0
        async for chunk in response.streaming_content:
            chunks.append(chunk)
            size += len(chunk)
            assert size <= MAX_STREAM_BYTES, (case.path, "the stream does not end")
        body = b"".join(chunks)
        if content_type.startswith("text/event-stream"):
            assert_well_formed_sse(body, case.path)
    else:
        body = response.content
    assert_in_family(case, response.status_code, content_type, body)


# --- the server: one event loop for all requests, as daphne's ----------------------------------


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


def run(loop: asyncio.AbstractEventLoop, coroutine) -> object:
    return asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout=60)


@pytest.fixture
def world(user, django_user_model, access_token) -> World:
    other = django_user_model.objects.create_user("other", password="a-long-pass-123")
    ids = {}
    for who in (user, other):
        conversation = Conversation.objects.create(user=who, title="Tillen")
        ids[who.pk] = [
            str(log_session(who).id),
            str(log_session(who, conversation=conversation).id),
            str(conversation.id),
        ]
    return World(
        owned=ids[user.pk],
        others=ids[other.pk],
        user_pk=str(user.pk),
        jwt=access_token(user),
        other_jwt=access_token(other),
        api_key=ApiKey.issue(user, "fuzz")[1],
        other_api_key=ApiKey.issue(other, "fuzz")[1],
    )


CSRF_TOKEN = "a" * 32


def client_for(caller: str, world: World, user) -> tuple[AsyncClient, str | None]:
    """The client and the Authorization header it sends."""
    client = AsyncClient(raise_request_exception=False, enforce_csrf_checks=caller == "session_csrf")
    if caller.startswith("session"):
        client.force_login(user)
        client.cookies["csrftoken"] = CSRF_TOKEN  # a request may send it back, or not, or garbage
    return client, {"jwt": f"Bearer {world.jwt}", "api_key": f"Bearer {world.api_key}"}.get(caller)


@pytest.mark.parametrize("caller", CALLERS)
def test_no_route_answers_500_or_html(caller, world, user, loop, small_kb, settings):
    from django.core.cache import cache

    settings.EVI360_FIRST_READER_TIMEOUT = 0.1  # streams started for an EventSource that never comes
    routes = all_routes()
    client, authorization = client_for(caller, world, user)

    @settings_for_fuzzing
    @given(case=case_strategy(routes, world), send_csrf=st.booleans())
    def fuzz(case: Case, send_csrf: bool) -> None:
        cache.clear()  # rate limits would answer 429 before the input is read
        if send_csrf and caller == "session_csrf":
            case.headers["X-CSRFToken"] = CSRF_TOKEN
        run(loop, send(client, case, authorization))

    fuzz()
    assert_still_healthy(loop, django_user_model=type(user))


settings_for_fuzzing = hypothesis_settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)


# --- a sweep: every /api/ and /v1/ route, every method, each hostile body ----------------------
# Hypothesis draws a few hundred cases; this makes sure each route's parser meets each of these.

JSON = "application/json"
SWEEP_BODIES = [
    (DEEP, JSON),
    (DEEP_OBJECT, JSON),
    (
        '{"query": ' + HUGE_DIGITS + ', "model": "evi-specialist", "refresh": 1, "n": ' + HUGE_DIGITS + "}",
        JSON,
    ),
    ('{"query": "' + SURROGATE + '", "refresh": "' + SURROGATE + '", "model": "' + SURROGATE + '"}', JSON),
    ('{"query": "a' + NUL + '", "username": "' + NUL + '", "password": "x"}', JSON),
    ('{"query": [], "model": {}, "messages": "x", "refresh": [], "username": 1}', JSON),
    ("[]", JSON),
    (b"\xff\xfe{", JSON),  # not UTF-8
    ("query=x&model=evi-specialist&refresh=x", "application/x-www-form-urlencoded"),
    ('{"query": "x"}', "text/plain"),
    ("--x\r\n\r\n", "multipart/form-data"),
]


def sweep_paths(route: Route, world: World) -> list[str]:
    if any(kind == "regex" for kind, _ in route.parts):
        return []
    # An owned session and conversation, another user's session (random ids: the hypothesis test).
    fills = {"uuid": [world.owned[0], world.owned[2], world.others[0]]}
    paths = [""]
    for kind, value in route.parts:
        options = [value] if kind == "text" else fills.get(kind, ["x"])
        paths = [path + option for path in paths for option in options]
    return ["/" + path for path in paths] + (
        ["/" + route.template + "nope"] if route.template.endswith("/") else []
    )


@pytest.mark.parametrize("caller", ["anonymous", "jwt", "session"])  # an API key is read as a JWT is
def test_every_api_route_takes_every_hostile_body(caller, world, user, loop, small_kb):
    from django.core.cache import cache

    routes = [r for r in all_routes() if r.template.startswith(("api/", "v1/"))]
    paths = [path for route in routes for path in sweep_paths(route, world)] + ["/api/nope", "/v1/nope"]
    assert "/v1/chat/completions" in paths and f"/api/v1/stream/sessions/{world.owned[0]}/events" in paths
    client, authorization = client_for(caller, world, user)

    async def sweep() -> None:
        for path in paths:
            cache.clear()
            for method in METHODS:
                # GET, HEAD and OPTIONS rarely read a body: one hostile body is enough there.
                bodies = SWEEP_BODIES if method in ("POST", "PUT", "PATCH", "DELETE") else SWEEP_BODIES[:1]
                for body, kind in bodies:
                    raw = body if isinstance(body, bytes) else body.encode()
                    await send(client, Case(method, path, "", raw, kind, {}), authorization)

    run(loop, sweep())
    assert_still_healthy(loop, django_user_model=type(user))


SWEEP_QUERY_VALUES = [HUGE_DIGITS, "-1", "%00%ff", "%ed%a0%80", "9999-12-31T23:59:59-23:59"]
SWEEP_HEADERS = [
    {"Last-Event-ID": HUGE_DIGITS},
    {"Authorization": "Basic dXNlcjpwYXNz"},
    {"Authorization": "Bearer a.b.c"},
    {"Authorization": "Bearer " + "x" * 5000},
    {"Accept": "text/html"},
]


def test_every_api_route_takes_hostile_queries_and_headers(world, user, loop, small_kb):
    from django.core.cache import cache

    routes = [r for r in all_routes() if r.template.startswith(("api/", "v1/"))]
    paths = [path for route in routes for path in sweep_paths(route, world)]
    client, authorization = client_for("jwt", world, user)
    keys = ["page", "page_size", "since", "until", "last_event_id", "status", "language", "script"]

    async def sweep() -> None:
        for path in paths:
            cache.clear()
            for key in keys:
                for value in SWEEP_QUERY_VALUES:
                    await send(client, Case("GET", path, f"{key}={value}", b"", JSON, {}), authorization)
            for headers in SWEEP_HEADERS:
                for method in ("GET", "POST"):
                    body = b'{"query": "x", "model": "evi-specialist"}'
                    await send(client, Case(method, path, "", body, JSON, headers), authorization)

    run(loop, sweep())
    assert_still_healthy(loop, django_user_model=type(user))


def assert_still_healthy(loop: asyncio.AbstractEventLoop, django_user_model) -> None:
    from django.core.cache import cache
    from rest_framework_simplejwt.tokens import AccessToken

    cache.clear()
    fresh = django_user_model.objects.create_user(f"after-{uuid.uuid4().hex[:8]}", password="a-long-pass-123")
    client = AsyncClient()
    headers = {"Authorization": f"Bearer {AccessToken.for_user(fresh)}"}

    async def check() -> None:
        health = await client.get("/healthz")
        assert health.status_code == 200, health.content
        response = await client.post(
            "/api/v1/stream/query",
            {"query": "Hoe zwaar mag ik tillen?"},
            content_type="application/json",
            headers=headers,
        )
        assert response.status_code == 200, response.content
        raw = b"".join([chunk async for chunk in response.streaming_content])
        assert_well_formed_sse(raw, "/api/v1/stream/query")
        assert b"event: done" in raw, raw[-500:]

    run(loop, check())
