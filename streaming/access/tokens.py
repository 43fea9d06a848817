"""Revocable JWTs. simplejwt's tokens are checked by signature and expiry only; here:

- Refresh tokens are recorded (simplejwt's blacklist app), rotated on every refresh, and the used
  one blacklisted; ``POST /api/v1/auth/logout/`` (streaming.api.accounts.LogoutView) blacklists the one
  it is given.
- A password change, a deactivation (``is_active`` set to False) or "log out everywhere" (the API
  keys page) revokes a user's tokens (``revoke_tokens``): every refresh token of theirs is
  blacklisted, and tokens issued before it (their ``iat``) are refused wherever a JWT is accepted
  (``JWTAuthentication`` for DRF, ``streaming.access.auth`` for the streaming views and /v1/). A token's
  ``iat`` is in whole seconds: one issued in the very second of a revocation is refused too.
  The signals below see ``set_password`` + ``save`` (the admin's and Django's password forms
  included) and ``save`` of an inactive user; a queryset's ``update()`` sends no signal.
- A token whose user is gone, or whose ``user_id`` is no valid id, is a 401, not a 500.

Not a module that imports DRF's views: DRF's settings import it (DEFAULT_AUTHENTICATION_CLASSES).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models.signals import post_save, pre_save
from django.dispatch import receiver
from django.utils import timezone
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt import authentication, serializers
from rest_framework_simplejwt.exceptions import InvalidToken
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import Token

from streaming.models import TokenCutoff
from streaming.store import fast_sql

REVOKED = "The token has been revoked (password change or logout): log in again."
NO_USER_ID = "The token contains no valid user id."
# The attribute streaming.access.auth's bulk user lookup sets: the user's cutoff, read in the same trip.
_CUTOFF_ATTR = "_token_valid_after"
_UNSET = object()


def revoke_tokens(user: AbstractBaseUser) -> None:
    """Log the user out of the API everywhere: their refresh tokens are blacklisted and every
    JWT of theirs issued until now is refused. Personal API keys are not touched."""
    now = timezone.now()
    with transaction.atomic():
        TokenCutoff.objects.update_or_create(user_id=user.pk, defaults={"valid_after": now})
        outstanding = OutstandingToken.objects.filter(
            user_id=user.pk, expires_at__gt=now, blacklistedtoken__isnull=True
        )
        BlacklistedToken.objects.bulk_create(
            [BlacklistedToken(token=token) for token in outstanding], ignore_conflicts=True
        )


def _cutoff_of(user: AbstractBaseUser) -> datetime | None:
    value = getattr(user, _CUTOFF_ATTR, _UNSET)
    if value is _UNSET:
        value = TokenCutoff.objects.filter(user_id=user.pk).values_list("valid_after", flat=True).first()
    return value  # type: ignore[return-value]


def is_revoked(user: AbstractBaseUser, token: Token) -> bool:
    """Whether the token was issued before the user's tokens were last revoked."""
    cutoff = _cutoff_of(user)
    if cutoff is None:
        return False
    issued = token.get("iat")
    if isinstance(issued, bool) or not isinstance(issued, int | float):
        return True
    return issued < cutoff.timestamp()


def load_cutoffs(users: Iterable[AbstractBaseUser | None]) -> None:
    """Reads the cutoffs of users (one query, plain SQL as streaming.access.auth reads the users) so
    that ``is_revoked`` needs no query: it runs on the event loop."""
    found = {user.pk: user for user in users if user is not None}
    if not found:
        return
    meta = TokenCutoff._meta
    field = meta.get_field("valid_after")
    rows = fast_sql.select_in(TokenCutoff, [meta.pk, field], meta.pk, list(found))
    cutoffs = {}
    for user_id, raw in rows:
        value = field.to_python(raw)
        # Stored in UTC; a backend without time zones (SQLite) gives it naive.
        cutoffs[user_id] = timezone.make_aware(value, UTC) if timezone.is_naive(value) else value
    for pk, user in found.items():
        setattr(user, _CUTOFF_ATTR, cutoffs.get(pk))


def user_id_of(token: Token) -> Any:
    """The token's user id as the user model's field takes it; InvalidToken when it is none."""
    field = get_user_model()._meta.get_field(api_settings.USER_ID_FIELD)
    try:
        return field.to_python(token[api_settings.USER_ID_CLAIM])
    except (KeyError, TypeError, ValueError, ValidationError) as e:
        raise InvalidToken(NO_USER_ID) from e


def _user_of(token: Token) -> AbstractBaseUser:
    model = get_user_model()
    user = model.objects.filter(**{api_settings.USER_ID_FIELD: user_id_of(token)}).first()
    if user is None:
        raise AuthenticationFailed("User not found", code="user_not_found")
    return user


class JWTAuthentication(authentication.JWTAuthentication):
    """simplejwt's, refusing revoked tokens, and a ``user_id`` that is no id, as a 401."""

    def get_user(self, validated_token: Token) -> AbstractBaseUser:
        user_id_of(validated_token)
        user = super().get_user(validated_token)
        if is_revoked(user, validated_token):
            raise AuthenticationFailed(REVOKED, code="token_revoked")
        return user


class TokenRefreshSerializer(serializers.TokenRefreshSerializer):
    """simplejwt's, refusing the refresh token of a deleted user, or one whose ``user_id`` is no
    id, or one issued before its user's tokens were revoked, as a 401."""

    def validate(self, attrs: dict[str, Any]) -> dict[str, str]:
        refresh = self.token_class(attrs["refresh"])
        user = _user_of(refresh)
        if is_revoked(user, refresh):
            raise AuthenticationFailed(REVOKED, code="token_revoked")
        return super().validate(attrs)


class TokenBlacklistSerializer(serializers.TokenBlacklistSerializer):
    def validate(self, attrs: dict[str, Any]) -> dict[Any, Any]:
        user_id_of(self.token_class(attrs["refresh"]))  # blacklist() would look the id up
        return super().validate(attrs)


# --- Revocation on a password change or a deactivation -------------------------------------------


@receiver(pre_save, sender=settings.AUTH_USER_MODEL)
def _note_revocation(sender: type, instance: AbstractBaseUser, raw: bool = False, **kwargs: Any) -> None:
    if raw or instance._state.adding:
        return
    update_fields = kwargs.get("update_fields")

    def saved(name: str) -> bool:
        return update_fields is None or name in update_fields

    # set_password() keeps the raw password until the save (a hash upgrade on login does not).
    changed = getattr(instance, "_password", None) is not None and saved("password")
    deactivated = (
        not changed
        and not getattr(instance, "is_active", True)
        and saved("is_active")
        and sender._default_manager.filter(pk=instance.pk, is_active=True).exists()
    )
    if changed or deactivated:
        instance._revoke_tokens = True  # type: ignore[attr-defined]


@receiver(post_save, sender=settings.AUTH_USER_MODEL)
def _revoke(sender: type, instance: AbstractBaseUser, **kwargs: Any) -> None:
    if instance.__dict__.pop("_revoke_tokens", False):
        revoke_tokens(instance)
