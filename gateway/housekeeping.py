"""The gateway's clock-driven chores: reminders and escalations of sharing requests on the (possibly
accelerated) clock, and forgetting event ids older than the duplicate window once an hour."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from gateway.agreements import AgreementStore
from gateway.enforcement import Enforcement

log = logging.getLogger("concord.gateway")
SWEEP_SECONDS = 0.5
FORGET_EVERY_SECONDS = 3600


async def keep_house(agreements: AgreementStore, enforcement: Enforcement, stop: asyncio.Event) -> None:
    forgotten_at = 0.0
    while not stop.is_set():
        try:
            await agreements.sweep()
            if time.monotonic() - forgotten_at > FORGET_EVERY_SECONDS:
                await enforcement.forget_seen_before()
                forgotten_at = time.monotonic()
        except Exception:
            log.exception("agreement watch failed; retrying")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), SWEEP_SECONDS)
