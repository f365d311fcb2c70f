"""``cancel_and_wait``: the one way the center and the notification service stop their loops."""

from __future__ import annotations

import asyncio

import pytest

from center.platform.tasks import cancel_and_wait


async def test_every_loop_is_stopped_and_has_finished_on_return() -> None:
    started = asyncio.Event()

    async def loop() -> None:
        started.set()
        await asyncio.Event().wait()

    tasks = [asyncio.create_task(loop()), asyncio.create_task(loop())]
    await started.wait()
    await cancel_and_wait(tasks)
    assert all(t.cancelled() for t in tasks)


async def test_a_loop_that_crashed_is_not_hidden() -> None:
    async def crash() -> None:
        raise RuntimeError("broken loop")

    async def loop() -> None:
        await asyncio.Event().wait()

    crashed, running = asyncio.create_task(crash()), asyncio.create_task(loop())
    await asyncio.wait([crashed])
    with pytest.raises(RuntimeError, match="broken loop"):
        await cancel_and_wait([crashed, running])
    assert running.cancelled()
