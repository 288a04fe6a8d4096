"""The service catalogue (``catalogue.toml``): the stages, the approval items of each, which projects need
them, their time limits and documents, and when a joint site survey is arranged."""

from __future__ import annotations

import tomllib
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contracts.bureau import Project
from contracts.departments import DEPARTMENTS

CATALOGUE_FILE = Path(__file__).with_name("catalogue.toml")


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Applies(Frozen):
    """Which projects need something: every condition given must hold; a list holds if any value matches."""

    project_types: tuple[str, ...] = ()
    min_land_area_m2: float = 0
    min_floor_area_m2: float = 0
    min_investment_10k_cny: float = 0
    industry_prefixes: tuple[str, ...] = ()
    locations: tuple[str, ...] = ()

    def __call__(self, project: Project) -> bool:
        return (
            (not self.project_types or project.project_type in self.project_types)
            and project.land_area_m2 >= self.min_land_area_m2
            and project.floor_area_m2 >= self.min_floor_area_m2
            and project.investment_10k_cny >= self.min_investment_10k_cny
            and (not self.industry_prefixes or project.industry_code.startswith(self.industry_prefixes))
            and (not self.locations or project.location in self.locations)
        )


class Document(Frozen):
    name: str
    key: bool = Field(description="key documents are needed at intake; others may follow against a promise")


class Commitment(Frozen):
    """Approval on commitment (告知承诺制): the item is approved on the applicant's written commitment and the
    department verifies it afterwards; a failed verification revokes the approval."""

    undertaking: str = Field(description="what the applicant commits to in writing")
    verify_within_days: int = Field(gt=0, description="working days the department has to verify it")


class ApprovalItem(Frozen):
    code: str
    name_zh: str
    name_en: str
    department: str
    stage: int = Field(ge=1, le=4)
    statutory_days: int = Field(gt=0, description="legal time limit in working days")
    committed_days: int = Field(gt=0, description="the district's committed time limit in working days")
    documents: tuple[Document, ...] = ()
    applies: Applies = Applies()
    commitment: Commitment | None = None  # marked for approval on commitment

    @model_validator(mode="after")
    def _sane(self) -> ApprovalItem:
        if self.department not in DEPARTMENTS:
            raise ValueError(f"{self.code}: unknown department {self.department}")
        if self.committed_days > self.statutory_days:
            raise ValueError(f"{self.code}: the commitment may not exceed the legal limit")
        return self


class Stage(Frozen):
    number: int = Field(ge=1, le=4)
    name_zh: str
    name_en: str
    lead: str
    target_days: int = Field(gt=0)


class Survey(Frozen):
    stage: int
    departments: tuple[str, ...]
    days_after_intake: int = Field(ge=0)
    applies: Applies


class ServiceCatalogue(Frozen):
    version: str
    case_target_days: int
    stages: tuple[Stage, ...]
    survey: Survey
    items: tuple[ApprovalItem, ...]

    @model_validator(mode="after")
    def _complete(self) -> ServiceCatalogue:
        if [s.number for s in self.stages] != [1, 2, 3, 4]:
            raise ValueError("the catalogue needs stages 1 to 4, in order")
        codes = [i.code for i in self.items]
        if len(codes) != len(set(codes)):
            raise ValueError("item codes must be unique")
        return self

    def items_for(self, stage: int, project: Project) -> list[ApprovalItem]:
        return [i for i in self.items if i.stage == stage and i.applies(project)]

    def item(self, code: str) -> ApprovalItem:
        return next(i for i in self.items if i.code == code)

    def stage(self, number: int) -> Stage:
        return self.stages[number - 1]

    def documents_for(self, project: Project) -> list[Document]:
        """Every document the project's items need, once each."""
        seen: dict[str, Document] = {}
        for item in self.items:
            if item.applies(project):
                for document in item.documents:
                    seen.setdefault(document.name, document)
        return list(seen.values())


@lru_cache(maxsize=4)
def load_catalogue(path: Path = CATALOGUE_FILE) -> ServiceCatalogue:
    return ServiceCatalogue.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))
