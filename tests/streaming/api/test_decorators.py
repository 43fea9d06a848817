"""``authorize``: the order of the checks before a view (405, 401, CSRF's 403, 415), each answered
in the endpoint family's shape, and an ``ApiError`` from the view answered the same way."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient, RequestFactory

from evi360.errors import ApiError
from streaming.access.auth import Caller
from streaming.api.decorators import OPENAI, authorize
from streaming.models import ApiKey

pytestmark = pytest.mark.django_db(transaction=True)
QUERY = "/api/v1/stream/query"


def code_of(response) -> str:
    return response.json()["error"]["code"]


async def test_a_wrong_method_is_405_before_credentials_are_asked_for(async_client):
    response = await async_client.put(QUERY, "x", content_type="text/plain")
    assert (response.status_code, code_of(response), response["Allow"]) == (405, "method_not_allowed", "POST")
    response = await async_client.post("/v1/models")
    assert (response.status_code, response.json()["error"]["type"]) == (405, "invalid_request_error")
    assert response["Allow"] == "GET"


async def test_no_credentials_is_401_before_the_content_type_is_looked_at(async_client):
    response = await async_client.post(QUERY, "x", content_type="text/plain")
    assert (response.status_code, code_of(response)) == (401, "not_authenticated")
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


async def test_csrf_comes_after_credentials_and_before_the_content_type(user):
    client = AsyncClient(enforce_csrf_checks=True)
    response = await client.post(QUERY, "x", content_type="text/plain")
    assert code_of(response) == "not_authenticated"  # anonymous: no CSRF question yet
    await sync_to_async(client.force_login)(user)
    response = await client.post(QUERY, "x", content_type="text/plain")
    assert (response.status_code, code_of(response)) == (403, "csrf_failed")
    await client.get("/accounts/login/")  # sets the csrftoken cookie
    token = client.cookies["csrftoken"].value
    response = await client.post(QUERY, "x", content_type="text/plain", headers={"X-CSRFToken": token})
    assert (response.status_code, code_of(response)) == (415, "unsupported_media_type")


async def test_the_openai_family_takes_no_session_cookie(user, async_client):
    await sync_to_async(async_client.force_login)(user)
    response = await async_client.get("/v1/models")
    error = response.json()["error"]
    assert (response.status_code, error["code"], error["type"]) == (
        401,
        "invalid_api_key",
        "invalid_request_error",
    )
    assert "WWW-Authenticate" not in response


@pytest.mark.parametrize(
    ("status", "kind"), [(429, "rate_limit_error"), (503, "server_error"), (404, "invalid_request_error")]
)
async def test_a_views_api_error_is_rendered_in_its_familys_shape(user, status, kind):
    @authorize("GET", family=OPENAI)
    async def view(request, caller: Caller):
        raise ApiError(status, "some_code", "Some message.", {"Retry-After": "3"})

    request = RequestFactory().get("/v1/anything")
    request.user = user
    request.session = {}
    _key, raw = await sync_to_async(ApiKey.issue)(user, "tests")
    request.META["HTTP_AUTHORIZATION"] = f"Bearer {raw}"
    response = await view(request)
    assert response.status_code == status and response["Retry-After"] == "3"
    assert json.loads(response.content)["error"] == {
        "message": "Some message.",
        "type": kind,
        "param": None,
        "code": "some_code",
    }
