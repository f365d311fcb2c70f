"""Stopping background tasks: the center's lifespan and the notification service each run a
few loops as tasks and must stop them all before closing what they use (the pool, the HTTP
client), so a loop never touches a closed resource on its way out."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any


async def cancel_and_wait(tasks: Sequence[asyncio.Task[Any]]) -> None:
    """Cancel every task and wait until all have finished. Cancellation is the expected end;
    the first other error a task ended with is raised afterwards (a crashed loop is not hidden
    at shutdown, and the others have still stopped before the caller goes on)."""
    for t in tasks:
        t.cancel()
    ends = await asyncio.gather(*tasks, return_exceptions=True)
    for end in ends:
        if isinstance(end, BaseException) and not isinstance(end, asyncio.CancelledError):
            raise end
