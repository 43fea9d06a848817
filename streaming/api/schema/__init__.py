"""The OpenAPI 3 description of the API (drf-spectacular): its hooks, named in settings."""

from streaming.api.schema import shapes  # noqa: F401  (registers the security schemes' extensions)
from streaming.api.schema.errors import add_error_responses
from streaming.api.schema.operations import add_streaming_endpoints

__all__ = ["add_error_responses", "add_streaming_endpoints"]
