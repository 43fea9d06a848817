"""Who is asking: a JWT bearer token, or a Django session (then CSRF applies, as in DRF)."""

from __future__ import annotations

import re
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth import get_user, get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import connection
from django.http import HttpRequest
from django.middleware.csrf import CsrfViewMiddleware
from django.utils import timezone
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import Token
from rest_framework_simplejwt.utils import get_md5_hash_password

from evi360.db import Batch, run_db
from streaming.access import tokens
from streaming.models import ApiKey
from streaming.store import fast_sql

BEARER_PROBLEM = "The Authorization header must be 'Bearer <access token>'."
# The one rule for the Authorization header, for every endpoint (our views, DRF's, /metrics):
# after trimming the header's surrounding spaces and tabs (RFC 9110 OWS, which servers drop anyway),
# it is the scheme "Bearer" in any case (RFC 7235: schemes are case-insensitive), exactly one space,
# and one token of visible ASCII characters (a JWT, an API key or the metrics token: no whitespace).
# "bearer  <jwt>" (two spaces), "Bearer\t<jwt>", "Bearer <a> <b>", "Basic ..." are all refused.
_BEARER = re.compile(r"[Bb][Ee][Aa][Rr][Ee][Rr] ([\x21-\x7e]+)")


def bearer_token(header: str | bytes | None) -> str | None:
    """The token of an ``Authorization`` header value; None when there is none (absent or blank).

    Raises ``AuthenticationFailed`` (code ``bad_authorization_header``) for any other header."""
    if isinstance(header, bytes):
        header = header.decode("latin-1")
    header = (header or "").strip(" \t")
    if not header:
        return None
    match = _BEARER.fullmatch(header)
    if match is None:
        raise AuthenticationFailed(BEARER_PROBLEM, code="bad_authorization_header")
    return match[1]


# last_used_at is written at most once a minute per key, not on every request.
LAST_USED_PRECISION = timedelta(minutes=1)


@dataclass(frozen=True)
class Claim:
    """A JWT whose signature and expiry are checked and whose user is still to be read: a
    stream's start reads it in its own trip to a database thread (``users_of``), one hop less."""

    user_id: Hashable
    token: Token


@dataclass(frozen=True)
class Caller:
    user: AbstractBaseUser | None
    via_session: bool = False
    # Why a presented credential was refused (None when nothing was presented).
    problem: str | None = None
    # identify(user_later=True): a valid JWT, its user not read yet (``user`` is None).
    claim: Claim | None = None


def user_for_api_key(raw: str) -> AbstractBaseUser | None:
    """The owner of a usable personal API key (sync), noting when it was last used."""
    key = ApiKey.objects.usable().select_related("user").filter(key_hash=ApiKey.digest(raw)).first()
    if key is None:
        return None
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_PRECISION:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
    return key.user


def _session_caller(request: HttpRequest) -> Caller:
    """The user of the session cookie, if any (sync: it reads the database)."""
    user = get_user(request)
    if user.is_authenticated and user.is_active:
        return Caller(user, via_session=True)
    return Caller(None)


class _CSRFCheck(CsrfViewMiddleware):
    def _reject(self, request: HttpRequest, reason: str) -> str:  # type: ignore[override]
        return reason


async def identify(request: HttpRequest, *, user_later: bool = False) -> Caller:
    """Who is asking: a bearer token (a JWT or a personal API key), else the session cookie.

    A JWT is checked here, on the event loop (its signature and expiry: no database), and its
    user read together with those of the requests arriving meanwhile: one query and one trip to a
    database thread for a burst of streams, not one each. ``user_later``: the user is not read
    here; the caller gets a ``Claim`` to read with ``users_of`` in a database trip it makes
    anyway. API keys and the session cookie are looked up in a database thread."""
    try:
        token = bearer_token(request.headers.get("Authorization"))
    except AuthenticationFailed:
        return Caller(None, problem=BEARER_PROBLEM)
    if token is None:
        return await run_db(_session_caller, request)
    if token.startswith(ApiKey.PREFIX):
        user = await run_db(user_for_api_key, token)
        return Caller(user) if user else Caller(None, problem="The API key is invalid or has been revoked.")
    try:
        validated = JWTAuthentication().get_validated_token(token.encode())
        user_id = (
            get_user_model()
            ._meta.get_field(api_settings.USER_ID_FIELD)
            .to_python(validated[api_settings.USER_ID_CLAIM])
        )
    except (InvalidToken, TokenError, KeyError, ValidationError):
        return Caller(None, problem="The access token is invalid or has expired.")
    if user_later:
        return Caller(None, claim=Claim(user_id, validated))
    user = await _USERS.submit(user_id)
    problem = _refusal(user, validated)
    return Caller(None, problem=problem) if problem else Caller(user)


def _refusal(user: AbstractBaseUser | None, token: Token) -> str | None:
    """What simplejwt's ``JWTAuthentication.get_user`` would refuse the token's user for."""
    if user is None:
        return "User not found"
    if api_settings.CHECK_USER_IS_ACTIVE and not user.is_active:
        return "User is inactive"
    revoked = api_settings.CHECK_REVOKE_TOKEN and token.get(
        api_settings.REVOKE_TOKEN_CLAIM
    ) != get_md5_hash_password(user.password)
    if revoked:
        return "The user's password has been changed."
    if tokens.is_revoked(user, token):
        return tokens.REVOKED
    return None


def _load_users(ids: Sequence[Hashable]) -> list[AbstractBaseUser | None]:
    """The users of JWT claims, in one query in plain SQL, which spares compiling ``in_bulk`` with
    the ORM on every call (docs/performance.md). Only the columns read on the streaming path (the
    key, ``is_active``, the password for simplejwt's revocation check) are selected; the user's
    other fields load on first access, as ``.only()`` would (callers use the primary key)."""
    model = get_user_model()
    meta = model._meta
    key = meta.get_field(api_settings.USER_ID_FIELD)
    names = {meta.pk.name, key.name, "password", "is_active"}
    fields = [f for f in meta.concrete_fields if f.name in names]
    rows = fast_sql.select_in(model, fields, key, list(dict.fromkeys(ids)))
    attnames = [f.attname for f in fields]
    found = {}
    for row in rows:
        # to_python: what the backend's converters would give for these types (SQLite's 0/1 → bool).
        user = model.from_db(
            connection.alias, attnames, [f.to_python(v) for f, v in zip(fields, row, strict=True)]
        )
        found[getattr(user, key.attname)] = user
    tokens.load_cutoffs(found.values())
    return [found.get(i) for i in ids]


_USERS: Batch[Hashable, AbstractBaseUser | None] = Batch(_load_users)


def users_of(claims: Sequence[Claim]) -> list[AbstractBaseUser | str]:
    """Per claim (sync, one query for all): its user, or why simplejwt would refuse it."""
    users = _load_users([claim.user_id for claim in claims])
    # _refusal is "User not found" for None: every item is a user or a reason.
    return [_refusal(user, claim.token) or user for user, claim in zip(users, claims, strict=True)]  # type: ignore[misc]


def csrf_problem(request: HttpRequest) -> str | None:
    """Why the request fails Django's CSRF check, or None when it passes."""
    check = _CSRFCheck(lambda r: None)  # type: ignore[arg-type, return-value]
    check.process_request(request)
    return check.process_view(request, lambda r: None, (), {})  # type: ignore[return-value]


class ApiKeyAuthentication(BaseAuthentication):
    """Personal API keys for the REST API too (DRF), next to JWT and sessions."""

    def authenticate(self, request):  # type: ignore[no-untyped-def]
        token = bearer_token(request.headers.get("Authorization"))
        if token is None or not token.startswith(ApiKey.PREFIX):
            return None  # not ours: JWT or session authentication may take it
        user = user_for_api_key(token)
        if user is None:
            raise AuthenticationFailed("The API key is invalid or has been revoked.")
        return (user, None)

    def authenticate_header(self, request):  # type: ignore[no-untyped-def]
        return 'Bearer realm="api"'


class BearerJWTAuthentication(tokens.JWTAuthentication):
    """simplejwt's JWT authentication (refusing revoked tokens) reading the header by
    ``bearer_token``, as our views do (simplejwt itself splits on any whitespace and wants the
    scheme spelt exactly "Bearer")."""

    def get_header(self, request):  # type: ignore[no-untyped-def]
        return request.META.get("HTTP_AUTHORIZATION")

    def get_raw_token(self, header):  # type: ignore[no-untyped-def]
        token = bearer_token(header)
        if token is None or token.startswith(ApiKey.PREFIX):
            return None  # no header (session authentication may take it), or an API key
        return token.encode()
