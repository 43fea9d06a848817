"""The baseline a user would otherwise write: FastAPI + StreamingResponse + Pydantic AI's
``run_stream`` with ``stream_text(delta=True, debounce_by=None)``, SSE framing by hand, served by
uvicorn. No authentication, rate limit, retrieval or log: everything our app does on top is
measured against this.

    BENCH_TOKENS=60 .venv/bin/python -m uvicorn bench.baseline_fastapi:app --port 8001

With ``BENCH_UPSTREAM`` (a base URL: bench/upstream.py) it streams from Claude's Messages API
there, through Pydantic AI's ``AnthropicModel`` and the ``anthropic`` SDK with its defaults, as a
user would write it; otherwise from the scripted model.
"""

from __future__ import annotations

import json
import os

from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from pydantic_ai import Agent

from bench.scripted_model import model


def upstream_model():  # type: ignore[no-untyped-def]
    from pydantic_ai.models.anthropic import AnthropicModel
    from pydantic_ai.providers.anthropic import AnthropicProvider

    provider = AnthropicProvider(api_key="bench", base_url=os.environ["BENCH_UPSTREAM"])
    return AnthropicModel("claude-sonnet-4-6", provider=provider)


app = FastAPI()
agent = Agent(
    upstream_model() if os.environ.get("BENCH_UPSTREAM") else model(),
    instructions="Answer workplace-safety questions.",
)


class Question(BaseModel):
    query: str


@app.post("/stream")
async def stream(question: Question) -> StreamingResponse:
    async def events():  # type: ignore[no-untyped-def]
        async with agent.run_stream(question.query) as result:
            async for text in result.stream_text(delta=True, debounce_by=None):
                yield f"event: token\ndata: {json.dumps({'text': text})}\n\n"
        yield "event: done\ndata: {}\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")
