"""The members of the exchange: each has an ingress, a deliver and a dead-letter topic."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Department:
    code: str
    name_zh: str
    name_en: str


BUREAU = "bureau"
DEVREFORM = "devreform"
PLANNING = "planning"
ENVIRONMENT = "environment"
HOUSING = "housing"
AIRDEFENCE = "airdefence"
MARKET = "market"
WATER = "water"
COORDINATION = "coordination"
EXCHANGE = "exchange"  # the gateway itself: publisher of rejection notices, never a sender on ingress

DEPARTMENTS: dict[str, Department] = {
    d.code: d
    for d in [
        Department(BUREAU, "行政审批局", "Administrative Approval Bureau"),
        Department(DEVREFORM, "发展和改革局", "Development and Reform Bureau"),
        Department(PLANNING, "自然资源和规划局", "Natural Resources and Planning Bureau"),
        Department(ENVIRONMENT, "生态环境局", "Ecology and Environment Bureau"),
        Department(HOUSING, "住房和城乡建设局", "Housing and Urban-Rural Development Bureau"),
        Department(AIRDEFENCE, "人民防空办公室", "Civil Air Defence Office"),
        Department(MARKET, "市场监督管理局", "Market Regulation Bureau"),
        Department(WATER, "水务局", "Water Affairs Bureau"),
        Department(COORDINATION, "联席会议办公室", "Coordination Office of the Joint Meeting"),
    ]
}

# Departments that run a service: each owns a schema in PostgreSQL and a set of topics.
SERVICE_DEPARTMENTS: tuple[str, ...] = tuple(DEPARTMENTS)
# Departments that give opinions on approval items.
REVIEWERS: frozenset[str] = frozenset({DEVREFORM, PLANNING, ENVIRONMENT, HOUSING, AIRDEFENCE, MARKET, WATER})

# Principals of the trust boundary besides the departments: each holds credentials for the broker and the APIs.
GATEWAY = "gateway"  # the exchange's own processes: router, HTTP API, audit keeper
OPERATOR = "operator"  # operators' views: reads everything over HTTP, changes nothing, no topic rights
PRINCIPALS: tuple[str, ...] = (*SERVICE_DEPARTMENTS, GATEWAY, OPERATOR)
