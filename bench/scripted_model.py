"""The model both servers of the benchmark stream from: a Pydantic AI FunctionModel that emits
``BENCH_TOKENS`` tokens, the first after ``BENCH_FIRST_MS`` ms and then one every ``BENCH_GAP_MS``
ms (0: as fast as possible), with a citation marker now and then.

Our app loads it with ``EVI360_MODEL=python:bench.scripted_model:model``; the FastAPI baseline
imports it. The same schedule for both is what makes their figures comparable.
"""

from __future__ import annotations

import asyncio
import os

from pydantic_ai.models.function import FunctionModel


def schedule() -> tuple[int, float, float]:
    return (
        int(os.environ.get("BENCH_TOKENS", "60")),
        float(os.environ.get("BENCH_FIRST_MS", "50")) / 1000,
        float(os.environ.get("BENCH_GAP_MS", "20")) / 1000,
    )


def tokens_of(count: int) -> list[str]:
    """The answer's tokens: words, and a citation marker every 20."""
    return ["[1] " if index % 20 == 19 else f"w{index} " for index in range(count)]


def model() -> FunctionModel:
    tokens, first, gap = schedule()
    answer = tokens_of(tokens)

    async def stream(messages, info):  # type: ignore[no-untyped-def]
        if first:
            await asyncio.sleep(first)
        for index, token in enumerate(answer):
            if index and gap:
                await asyncio.sleep(gap)
            yield token

    return FunctionModel(stream_function=stream, model_name="bench")
