"""The bureau's service: case intake, and the handlers that move a case on as opinions come in."""

from __future__ import annotations

import logging

from contracts.bureau import OpinionIssued
from contracts.departments import BUREAU
from deploy.settings import Settings
from services.bureau import repository
from services.bureau.catalogue import ServiceCatalogue, load_catalogue
from services.bureau.model import Case, CaseApplication, NotOurRequest
from services.kit.calendar import WorkingDayCalendar
from services.kit.clock import Clock
from services.kit.service import Context, DepartmentService

log = logging.getLogger("concord.bureau")

AGENTS = ("王芳", "李强", "张伟", "刘洋", "陈静")  # the agency team (代办员)


class Bureau:
    def __init__(self, settings: Settings | None = None, clock: Clock | None = None,
                 catalogue: ServiceCatalogue | None = None) -> None:
        self.service = DepartmentService(BUREAU, settings, clock)
        self.catalogue = catalogue or load_catalogue()
        self.calendar = WorkingDayCalendar()
        self.service.handles(OpinionIssued)(self.on_opinion)

    @property
    def clock(self) -> Clock:
        return self.service.clock

    async def submit(self, application: CaseApplication) -> Case:
        """Accept a case: assign the least busy agent, open its first stage, publish what follows."""
        async with self.service.pool.acquire() as connection, connection.transaction():
            busy = dict(await connection.fetch(
                "SELECT agent, count(*) FROM bureau.cases WHERE status = 'in_progress' GROUP BY agent"
            ))
            agent = min(AGENTS, key=lambda a: busy.get(a, 0))
            case, events = Case.open(application, agent, self.clock.now(), self.catalogue, self.calendar)
            await repository.save(connection, case)
            for event in events:
                await self.service.outbox.add(connection, event)
        self.service.outbox.wake()
        return case

    async def case(self, case_id: str) -> Case | None:
        async with self.service.pool.acquire() as connection:
            return await repository.load(connection, case_id)

    async def on_opinion(self, event: OpinionIssued, ctx: Context) -> None:
        case = await repository.load(ctx.connection, event.case_id, for_update=True)
        if case is None:
            log.warning("opinion %s for unknown case %s", event.request_id, event.case_id)
            return
        try:
            events = case.record_opinion(
                event.request_id, ctx.sender, event.decision, event.conditions, event.reasons, event.decided_at,
                ctx.clock.now(), self.catalogue, self.calendar,
            )
        except NotOurRequest as exc:
            log.warning("%s", exc)
            return
        await repository.save(ctx.connection, case)
        for follow_up in events:
            await ctx.publish(follow_up)
