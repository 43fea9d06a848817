"""Schema-driven fuzzing of the REST API (schemathesis) against a real daphne: whatever it sends,
no 500s, and every response matches the OpenAPI schema at /api/schema/ (status code, content
type, headers, body)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tests.support.live_server import LiveServer, live_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(
        tmp_path_factory.mktemp("fuzz"),
        # Answers as fast as the model allows, so that streamed bodies are quick to read.
        EVI360_OFFLINE_TOKEN_DELAY_MS="0",
        EVI360_MAX_CONCURRENT_STREAMS="50",
    ) as live:
        yield live


@pytest.fixture(scope="module")
def token(server: LiveServer) -> str:
    return server.token()


def _schema() -> dict:
    # The very document /api/schema/ serves (tests/streaming/test_openapi.py checks that), built
    # at collection: schemathesis parametrizes the test with one case per operation.
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator().get_schema(request=None, public=True)


schema = schemathesis.openapi.from_dict(_schema())


@schema.parametrize()
@settings(
    # More for a deeper run: FUZZ_EXAMPLES=500 make test PYTEST_ARGS=tests/system/test_api_fuzz.py
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "25")),
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
    ],
)
def test_api_conforms_to_its_schema(case: schemathesis.Case, server: LiveServer, token: str) -> None:
    case.call_and_validate(base_url=server.base, headers={"Authorization": f"Bearer {token}"}, timeout=30)
