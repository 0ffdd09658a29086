"""gateway.offloop's Batches on a real event loop and its real threads: the requests of one
turn go to a thread together, each gets its own answer or its own error, and a batch that
is still being decided does not hold back the next."""

from __future__ import annotations

import asyncio
import threading

import pytest

from gateway import offloop
from gateway.offloop import Batches


def test_one_turns_requests_are_decided_together_each_with_its_own_answer() -> None:
    sizes: list[int] = []

    def decide(items: list[int]) -> list[int | BaseException]:
        sizes.append(len(items))
        return [ValueError(item) if item < 0 else item * 10 for item in items]

    batches = Batches(decide)

    async def main() -> list[object]:
        return await asyncio.gather(*(batches(n) for n in (1, -2, 3)), return_exceptions=True)

    answers = asyncio.run(main())
    assert answers[0] == 10 and answers[2] == 30
    assert isinstance(answers[1], ValueError) and answers[1].args == (-2,)
    assert sizes == [3]


def test_a_batch_is_cut_at_max_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(offloop, "MAX_BATCH", 4)
    sizes: list[int] = []

    def decide(items: list[int]) -> list[int | BaseException]:
        sizes.append(len(items))
        return list(items)

    batches = Batches(decide)

    async def main() -> list[int]:
        return await asyncio.gather(*(batches(n) for n in range(10)))

    assert asyncio.run(main()) == list(range(10))
    assert sorted(sizes) == [2, 4, 4]


def test_a_slow_batch_does_not_hold_the_next() -> None:
    release = threading.Event()

    def decide(items: list[str]) -> list[str | BaseException]:
        if "slow" in items:
            release.wait(10)
        return list(items)

    batches = Batches(decide)

    async def main() -> str:
        slow = asyncio.ensure_future(batches("slow"))
        await asyncio.sleep(0.05)  # the slow batch is in its thread
        quick = await asyncio.wait_for(batches("quick"), 5)
        assert not slow.done()
        release.set()
        assert await slow == "slow"
        return quick

    assert asyncio.run(main()) == "quick"


def test_a_mistake_in_decide_reaches_every_caller() -> None:
    def decide(items: list[int]) -> list[int | BaseException]:
        return []  # one answer short of each item

    batches = Batches(decide)

    async def main() -> list[object]:
        return list(await asyncio.gather(batches(1), batches(2), return_exceptions=True))

    answers = asyncio.run(main())
    assert all(isinstance(answer, RuntimeError) for answer in answers)
