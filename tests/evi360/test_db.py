"""evi360/db.py: Batch, the group commit of database work that arrives together."""

from __future__ import annotations

import asyncio
import threading

import pytest

from evi360.db import Batch


class Gate:
    """A batch function that records its batches and holds the first one until released."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.release = threading.Event()
        self.entered = threading.Event()

    def __call__(self, items: list[str]) -> list[str | Exception]:
        self.batches.append(list(items))
        self.entered.set()
        self.release.wait(5)
        if "poison" in items:
            raise ValueError("a bad item fails its whole batch")
        return [ValueError(f"refused {item}") if item.startswith("no") else item.upper() for item in items]


async def while_one_runs(gate: Gate, batch: Batch, items: tuple[str, ...]) -> list[object]:
    """Submit "a", then ``items`` while "a" is in the database; results of ``items``."""
    first = asyncio.ensure_future(batch.submit("a"))
    await asyncio.to_thread(gate.entered.wait, 5)
    rest = [asyncio.ensure_future(batch.submit(item)) for item in items]
    await asyncio.sleep(0)
    gate.release.set()
    assert await first == "A"
    return await asyncio.gather(*rest, return_exceptions=True)


async def test_a_lone_call_goes_at_once_and_calls_meanwhile_share_the_next_batch():
    gate = Gate()
    assert await while_one_runs(gate, Batch(gate), ("b", "c", "d")) == ["B", "C", "D"]
    assert gate.batches == [["a"], ["b", "c", "d"]]


async def test_an_exception_per_item_reaches_only_its_caller():
    gate = Gate()
    gate.release.set()
    batch = Batch(gate)
    results = await asyncio.gather(batch.submit("yes"), batch.submit("no"), return_exceptions=True)
    assert results[0] == "YES"
    assert isinstance(results[1], ValueError) and str(results[1]) == "refused no"


async def test_a_failing_batch_is_retried_item_by_item():
    gate = Gate()
    results = await while_one_runs(gate, Batch(gate), ("b", "poison", "c"))
    assert results[0] == "B" and results[2] == "C"
    assert isinstance(results[1], ValueError)
    assert gate.batches == [["a"], ["b", "poison", "c"], ["b"], ["poison"], ["c"]]


async def test_a_result_whose_caller_went_away_is_handed_to_abandoned():
    gate = Gate()
    abandoned: list[tuple[str, str]] = []
    batch = Batch(gate, abandoned=lambda item, result: abandoned.append((item, result)))
    waiting = asyncio.ensure_future(batch.submit("gone"))
    await asyncio.to_thread(gate.entered.wait, 5)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    gate.release.set()
    assert await batch.submit("next") == "NEXT"  # runs after the first batch has been handled
    assert abandoned == [("gone", "GONE")]


async def test_a_batch_task_cancelled_before_it_ran_fails_its_callers_and_the_next_batch_runs():
    """A closing event loop cancels every task, some before their first step: nobody may be
    left waiting, and whatever comes next is still written."""
    gate = Gate()
    gate.release.set()
    batch = Batch(gate)
    caller = asyncio.ensure_future(batch.submit("a"))
    await asyncio.sleep(0)  # the caller submitted: its batch task exists and has not run
    (task,) = [t for t in asyncio.all_tasks() if t.get_coro().__qualname__ == "Batch._run"]
    task.cancel()
    # (The timeouts inside pytest.raises: a timeout's own cancellation must not pass as the answer.)
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(5):
            await caller
    async with asyncio.timeout(5):
        assert await batch.submit("b") == "B"
    assert gate.batches == [["b"]]


class Early(Gate):
    """A batch function that settles its first item at once, then holds the rest until released
    (only batches led by an item in ``held``, when given)."""

    def __init__(self, held: set[str] | None = None) -> None:
        super().__init__()
        self.held = held

    def __call__(self, items: list[str], settle) -> list[str | None]:  # type: ignore[override]
        self.batches.append(list(items))
        if items[0] == "poison":
            raise ValueError("a bad item fails its whole batch")
        settle(0, items[0].upper())
        if self.held is None or items[0] in self.held:
            self.entered.set()
            self.release.wait(5)
        if "poison" in items:
            raise ValueError("a bad item fails its whole batch")
        return [None, *(item.upper() for item in items[1:])]


async def test_a_result_settled_early_reaches_its_caller_before_the_batch_ends():
    gate = Early()
    batch = Batch(gate, settles_early=True)
    first, second = asyncio.ensure_future(batch.submit("a")), asyncio.ensure_future(batch.submit("b"))
    await asyncio.sleep(0)
    async with asyncio.timeout(5):
        assert await first == "A"  # the batch still holds "b"
    assert not second.done()
    gate.release.set()
    assert await second == "B"
    assert gate.batches == [["a"], ["b"]]


async def test_a_batch_failing_after_settling_retries_only_what_it_had_not_settled():
    # Only "a" is held: the next three queue behind it and go in one batch, which nothing holds
    # (a gate shared with an earlier batch raced it: CI saw all four in one batch).
    gate = Early(held={"a"})
    batch = Batch(gate, settles_early=True)
    head = asyncio.ensure_future(batch.submit("a"))
    await asyncio.to_thread(gate.entered.wait, 5)
    rest = [asyncio.ensure_future(batch.submit(item)) for item in ("x", "poison", "y")]
    await asyncio.sleep(0)
    gate.release.set()
    assert await head == "A"
    results = await asyncio.gather(*rest, return_exceptions=True)
    assert results[0] == "X" and isinstance(results[1], ValueError) and results[2] == "Y"
    # "x" was settled by the failing batch; only "poison" and "y" are tried again, each alone.
    assert gate.batches == [["a"], ["x", "poison", "y"], ["poison"], ["y"]]


async def test_an_early_result_whose_caller_went_away_is_handed_to_abandoned():
    gate = Early()
    abandoned: list[tuple[str, str]] = []
    batch = Batch(gate, abandoned=lambda item, result: abandoned.append((item, result)), settles_early=True)
    waiting = asyncio.ensure_future(batch.submit("gone"))
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    gate.release.set()
    assert await batch.submit("next") == "NEXT"
    assert abandoned == [("gone", "GONE")]
