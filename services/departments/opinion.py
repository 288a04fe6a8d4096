"""What every reviewing department does with a request for its opinion: apply its rules to the project
and answer. A department's rules live in its own module, as a ``decide`` function."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from contracts.bureau import Decision, OpinionIssued, OpinionRequested
from deploy.settings import Settings
from services.kit.clock import Clock
from services.kit.service import Context, DepartmentService


@dataclass(frozen=True)
class Opinion:
    decision: Decision
    conditions: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)


Rules = Callable[[OpinionRequested], Opinion]


class ReviewingDepartment:
    def __init__(self, code: str, rules: Rules, officer: str, settings: Settings | None = None,
                 clock: Clock | None = None) -> None:
        self.code = code
        self.rules = rules
        self.officer = officer
        self.service = DepartmentService(code, settings, clock)
        self.service.handles(OpinionRequested)(self.on_request)

    async def on_request(self, request: OpinionRequested, ctx: Context) -> None:
        opinion = self.rules(request)
        await ctx.publish(OpinionIssued(
            request_id=request.request_id, case_id=request.case_id, item_code=request.item_code,
            decision=opinion.decision, conditions=opinion.conditions, reasons=opinion.reasons,
            officer=self.officer, decided_at=ctx.clock.now(),
        ))
