"""Health as a container platform reads it, on every process: ``/healthz`` says whether the process is alive and
doing its work (a failing answer asks its supervisor to restart it), ``/readyz`` whether it can take work now (its
store and broker answer). Each part of a process registers its own checks; a check returns None when all is well,
else what is wrong, in a sentence for the operator."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Literal

import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel

log = logging.getLogger("concord.health")
Check = Callable[[], Awaitable[str | None]]
Probe = Literal["alive", "ready"]
CHECK_SECONDS = 2.0  # a check that takes longer counts as failed


class HealthAnswer(BaseModel):
    status: Literal["ok", "failing"]
    problems: dict[str, str] = {}


class Health:
    def __init__(self) -> None:
        self.checks: dict[Probe, dict[str, Check]] = {"alive": {}, "ready": {}}

    def alive(self, name: str, check: Check) -> None:
        """A check of liveness: failing means the process should be restarted (it is stuck)."""
        self.checks["alive"][name] = check

    def ready(self, name: str, check: Check) -> None:
        """A check of readiness: failing means the process cannot take work now (it may recover by itself)."""
        self.checks["ready"][name] = check

    async def problems(self, probe: Probe) -> dict[str, str]:
        """What fails, by check. Readiness includes liveness: a stuck process is not ready either."""
        checks = {**self.checks["alive"], **(self.checks["ready"] if probe == "ready" else {})}
        found = await asyncio.gather(*(self._run(check) for check in checks.values()))
        return {name: problem for name, problem in zip(checks, found, strict=True) if problem is not None}

    @staticmethod
    async def _run(check: Check) -> str | None:
        try:
            return await asyncio.wait_for(check(), CHECK_SECONDS)
        except TimeoutError:
            return f"no answer within {CHECK_SECONDS:.0f} s"
        except Exception as exc:  # a check that fails is a finding, never an error of the probe
            return f"{type(exc).__name__}: {exc}"[:300]

    async def answer(self, probe: Probe) -> JSONResponse:
        problems = await self.problems(probe)
        body = HealthAnswer(status="failing" if problems else "ok", problems=problems)
        return JSONResponse(body.model_dump(), status_code=503 if problems else 200)

    def install(self, api: FastAPI) -> None:
        """``/healthz`` and ``/readyz`` on an API (open to anyone: a probe carries no token)."""

        async def healthz() -> JSONResponse:
            return await self.answer("alive")

        async def readyz() -> JSONResponse:
            return await self.answer("ready")

        answers: dict[int | str, dict[str, object]] = {200: {"model": HealthAnswer}, 503: {"model": HealthAnswer}}
        api.add_api_route("/healthz", healthz, methods=["GET"], responses=answers, response_model=HealthAnswer,
                          summary="alive and doing its work (503: restart me)")
        api.add_api_route("/readyz", readyz, methods=["GET"], responses=answers, response_model=HealthAnswer,
                          summary="ready to take work (503: not now)")


async def serve_health(health: Health, host: str, port: int, stop: asyncio.Event) -> None:
    """The probes alone, for a process that serves no API (a router or an audit keeper of its own)."""
    app = FastAPI(title="Concord health", docs_url=None, redoc_url=None, openapi_url=None)
    health.install(app)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off"))
    serving = asyncio.create_task(server.serve())
    await stop.wait()
    server.should_exit = True
    await serving
