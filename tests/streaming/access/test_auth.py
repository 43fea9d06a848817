"""streaming/access/auth.py: who is asking, read on the event loop with the users of a burst in one query."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django.test import RequestFactory
from rest_framework_simplejwt.tokens import AccessToken

from streaming.access import auth

pytestmark = pytest.mark.django_db(transaction=True)


def bearer(token: str):
    return RequestFactory().post("/api/v1/stream/query", headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
def loads(monkeypatch):
    """The id lists the user lookups were asked for, one per query."""
    calls: list[list] = []
    real = auth._load_users

    def counting(ids):
        calls.append(list(ids))
        return real(ids)

    monkeypatch.setattr(auth._USERS, "_fn", counting)
    return calls


async def test_the_users_of_requests_arriving_together_are_read_in_one_query(django_user_model, loads):
    users = [await sync_to_async(django_user_model.objects.create_user)(f"u{i}") for i in range(5)]
    callers = await asyncio.gather(*(auth.identify(bearer(str(AccessToken.for_user(u)))) for u in users))
    assert [c.user.pk for c in callers] == [u.pk for u in users]
    assert not any(c.via_session or c.problem for c in callers)
    # The first goes at once (nobody waits to fill a batch); the rest arrived meanwhile.
    assert [len(ids) for ids in loads] == [1, 4]


async def test_a_token_is_refused_as_simplejwt_refuses_it(django_user_model, loads):
    active = await sync_to_async(django_user_model.objects.create_user)("active")
    inactive = await sync_to_async(django_user_model.objects.create_user)("inactive", is_active=False)
    gone = await sync_to_async(django_user_model.objects.create_user)("gone")
    gone_token = str(AccessToken.for_user(gone))
    await gone.adelete()
    as_text = AccessToken.for_user(active)
    as_text["user_id"] = str(active.pk)  # a claim the ORM would accept is accepted
    not_an_id = AccessToken.for_user(active)
    not_an_id["user_id"] = "robert'); DROP TABLE"
    expected = {
        str(as_text): (active.pk, None),
        str(AccessToken.for_user(inactive)): (None, "User is inactive"),
        gone_token: (None, "User not found"),
        str(not_an_id): (None, "The access token is invalid or has expired."),
        "not.a.jwt": (None, "The access token is invalid or has expired."),
        str(AccessToken.for_user(active))[:-2] + "xx": (None, "The access token is invalid or has expired."),
    }
    for token, (user_id, problem) in expected.items():
        caller = await auth.identify(bearer(token))
        assert (caller.user.pk if caller.user else None, caller.problem) == (user_id, problem), token
    assert len(loads) == 3  # a token whose signature fails never reaches the database


async def test_other_credentials_are_looked_up_as_before(user, loads):
    from streaming.models import ApiKey

    _, raw = await sync_to_async(ApiKey.issue)(user, "laptop")
    caller = await auth.identify(bearer(raw))
    assert caller.user.pk == user.pk and loads == []
    anonymous = RequestFactory().get("/")
    anonymous.session = {}  # what the session middleware gives a browser without a login
    assert (await auth.identify(anonymous)).user is None
    caller = await auth.identify(RequestFactory().get("/", headers={"Authorization": "Basic dXNlcjpwYXNz"}))
    assert caller.user is None and "Bearer" in caller.problem


async def test_a_starts_claims_are_read_and_refused_as_identify_reads_and_refuses_them(django_user_model):
    """identify(user_later=True) leaves the user to users_of, read in the start's database trip
    in plain SQL: the same users, the same refusals."""
    active = await sync_to_async(django_user_model.objects.create_user)("active", email="a@example.org")
    inactive = await sync_to_async(django_user_model.objects.create_user)("inactive", is_active=False)
    gone = await sync_to_async(django_user_model.objects.create_user)("gone")
    tokens = [str(AccessToken.for_user(u)) for u in (active, inactive, gone, active)]
    await gone.adelete()
    callers = [await auth.identify(bearer(token), user_later=True) for token in tokens]
    assert all(c.user is None and c.problem is None and c.claim for c in callers)
    found = await sync_to_async(auth.users_of)([c.claim for c in callers])
    assert found[1:3] == ["User is inactive", "User not found"]
    assert [u.pk for u in (found[0], found[3])] == [active.pk, active.pk]
    user = found[0]
    assert user.is_active is True and user.password == active.password
    assert await sync_to_async(lambda: user.email)() == "a@example.org"  # the rest loads on access
    for token, claimed in zip(tokens, found, strict=True):  # and identify itself agrees
        caller = await auth.identify(bearer(token))
        assert (caller.user.pk if caller.user else caller.problem) == (
            claimed if isinstance(claimed, str) else claimed.pk
        )


ACCEPTED = ["Bearer {}", "bearer {}", "BEARER {}", " Bearer {}\t"]
REFUSED = ["bearer  {}", "Bearer\t{}", "Bearer {} extra", "Bearer", "Bearer ", "Token {}", "Bearer{}"]


@pytest.mark.parametrize("header", ["Bearer x", "bearer x", "BeArEr x", "  Bearer x \t"])
def test_bearer_token_accepts_one_space_after_the_scheme_in_any_case(header):
    assert auth.bearer_token(header) == "x"
    assert auth.bearer_token(header.encode()) == "x"


@pytest.mark.parametrize("header", [None, "", "  "])
def test_bearer_token_is_none_without_a_header(header):
    assert auth.bearer_token(header) is None


@pytest.mark.parametrize("header", ["bearer  x", "Bearer\tx", "Bearer x y", "Bearer", "Basic x", "Bearerx"])
def test_bearer_token_refuses_anything_else(header):
    from rest_framework.exceptions import AuthenticationFailed

    with pytest.raises(AuthenticationFailed):
        auth.bearer_token(header)


def _endpoints(client, header):
    """(family, status) for one Authorization header on every endpoint family."""
    headers = {"Authorization": header}
    return {
        "drf": client.get("/api/v1/conversations/", headers=headers).status_code,
        "sessions": client.get("/api/v1/stream/sessions/", headers=headers).status_code,
        "stream": client.post(
            "/api/v1/stream/query", "{}", content_type="application/json", headers=headers
        ).status_code,
        "openai": client.get("/v1/models", headers=headers).status_code,
    }


@pytest.mark.parametrize("template", ACCEPTED + REFUSED)
def test_every_endpoint_reads_the_header_the_same_way(client, user, access_token, template):
    from streaming.models import ApiKey

    _, raw = ApiKey.issue(user, "laptop")
    for token in (access_token(user), raw):
        statuses = _endpoints(client, template.format(token))
        if template in ACCEPTED:
            assert statuses == {"drf": 200, "sessions": 200, "stream": 400, "openai": 200}, (template, token)
        else:
            assert statuses == {"drf": 401, "sessions": 401, "stream": 401, "openai": 401}, (template, token)


@pytest.mark.parametrize("template", ACCEPTED + REFUSED)
def test_the_metrics_token_is_read_by_the_same_rule(client, settings, template):
    settings.EVI360_METRICS_TOKEN = "s3cret-metrics"
    settings.EVI360_METRICS_ALLOWED_IPS = []
    status = client.get("/metrics", headers={"Authorization": template.format("s3cret-metrics")}).status_code
    assert status == (200 if template in ACCEPTED else 403), template
