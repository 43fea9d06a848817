"""The baseline a user would otherwise write: FastAPI + StreamingResponse + Pydantic AI's
``run_stream`` with ``stream_text(delta=True, debounce_by=None)``, SSE framing by hand, served by
uvicorn. No authentication, rate limit, retrieval or log: everything our app does on top is
measured against this.

    BENCH_TOKENS=60 .venv/bin/python -m uvicorn bench.baseline_fastapi:app --port 8001
"""

from __future__ import annotations

import json

from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from pydantic_ai import Agent

from bench.scripted_model import model

app = FastAPI()
agent = Agent(model(), instructions="Answer workplace-safety questions.")


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
