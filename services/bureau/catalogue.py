"""The service catalogue: which approval items a project needs at each stage, and their time limits."""

from __future__ import annotations

import tomllib
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from contracts.bureau import Project

CATALOGUE_FILE = Path(__file__).with_name("catalogue.toml")
STAGES = (1, 2, 3, 4)


class ApprovalItem(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str
    name_zh: str
    name_en: str
    department: str
    stage: int = Field(ge=1, le=4)
    statutory_days: int = Field(gt=0, description="legal time limit in working days")
    committed_days: int = Field(gt=0, description="the district's committed time limit in working days")

    def applies_to(self, project: Project) -> bool:
        return True


class ServiceCatalogue(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str
    items: tuple[ApprovalItem, ...]

    def items_for(self, stage: int, project: Project) -> list[ApprovalItem]:
        return [i for i in self.items if i.stage == stage and i.applies_to(project)]

    def item(self, code: str) -> ApprovalItem:
        return next(i for i in self.items if i.code == code)


@lru_cache(maxsize=4)
def load_catalogue(path: Path = CATALOGUE_FILE) -> ServiceCatalogue:
    return ServiceCatalogue.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))
