"""Varied, realistic applications for demos and tests, reproducible from a seed."""

from __future__ import annotations

import random

from contracts.bureau import Project
from services.bureau.catalogue import load_catalogue
from services.bureau.credit_code import ALPHABET, check_character
from services.bureau.model import CaseApplication

PROTECTED = "滨江湿地保护区"  # inside the ecological red line: industry there is refused
STREETS = ("高新区", "经开区", "城东街道", "城南街道", "滨江街道", "临港工业园", "科创新城", PROTECTED)
PROJECTS = (
    # type, industry code (GB/T 4754), name stem, (land m² range), (plot ratio range), (investment 万元 per m² of floor)
    ("industrial", "C3989", "电子元器件生产基地", (20_000, 120_000), (0.8, 2.0), (0.25, 0.6)),
    ("industrial", "C2710", "生物医药产业园", (30_000, 150_000), (0.8, 1.8), (0.4, 0.9)),
    ("warehouse", "G5960", "智慧物流仓储中心", (40_000, 180_000), (0.6, 1.2), (0.15, 0.3)),
    ("commercial", "K7010", "商业综合体", (15_000, 60_000), (2.0, 2.9), (0.6, 1.2)),
    ("residential", "K7010", "安置住宅小区", (30_000, 90_000), (1.8, 2.8), (0.5, 0.8)),
    ("public", "P8331", "九年一贯制学校", (25_000, 60_000), (0.6, 1.2), (0.35, 0.5)),
    ("infrastructure", "D4420", "110千伏变电站", (3_000, 10_000), (0.3, 0.8), (2.0, 4.0)),
)
COMPANIES = ("华芯", "恒泰", "瑞达", "中科", "远景", "博源", "新洲", "安居", "宏图", "汇通")
SURNAMES = "王李张刘陈杨黄赵吴周"


def credit_code(rng: random.Random) -> str:
    first17 = "91" + "".join(rng.choice("0123456789") for _ in range(6)) + "".join(
        rng.choice(ALPHABET) for _ in range(9)
    )
    return first17 + check_character(first17)


PROJECT_TYPES = tuple(sorted({p[0] for p in PROJECTS}))


def project(rng: random.Random, project_type: str | None = None, streets: tuple[str, ...] = STREETS) -> Project:
    """A plausible project (of the type given, if any)."""
    kinds = [p for p in PROJECTS if project_type in (None, p[0])]
    if not kinds:
        raise ValueError(f"no project type {project_type!r}; one of: {', '.join(PROJECT_TYPES)}")
    project_type, industry, stem, land_range, ratio_range, cost_range = rng.choice(kinds)
    land = round(rng.uniform(*land_range), -2)
    floor = round(land * rng.uniform(*ratio_range), -2)
    return Project(
        name=f"{rng.choice(COMPANIES)}{stem}项目", project_type=project_type, land_area_m2=land, floor_area_m2=floor,
        investment_10k_cny=round(floor * rng.uniform(*cost_range), 1), industry_code=industry,
        location=rng.choice(streets),
    )


def application(rng: random.Random, of: Project | None = None) -> CaseApplication:
    """An application with every document the project needs handed in."""
    chosen = of or project(rng)
    company = chosen.name[:2]
    return CaseApplication(
        project=chosen,
        documents=[d.name for d in load_catalogue().documents_for(chosen)],
        applicant_name=f"{company}{rng.choice(('科技', '实业', '发展', '置业'))}有限公司",
        applicant_credit_code=credit_code(rng),
        contact_person=rng.choice(SURNAMES) + rng.choice(("经理", "主任", "总监")),
        contact_phone=f"138{rng.randrange(10**8):08d}",
    )


def template(project_type: str | None = None, seed: int = 1) -> CaseApplication:
    """An application that passes intake, to start from: every document its project needs handed in."""
    rng = random.Random(seed)
    return application(rng, project(rng, project_type, tuple(s for s in STREETS if s != PROTECTED)))


def applications(count: int, seed: int = 2026) -> list[CaseApplication]:
    rng = random.Random(seed)
    return [application(rng) for _ in range(count)]
