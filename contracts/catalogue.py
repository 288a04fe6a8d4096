"""Every contract declared in code, by (id, version). Importing this module declares them all: the modules
of contracts register themselves in ``contracts.base.CATALOGUE`` when they are imported."""

from __future__ import annotations

from contracts import bureau, bureau_v1, coordination, exchange, market
from contracts.base import CATALOGUE

MODULES = (bureau, bureau_v1, coordination, exchange, market)  # per owning department, and its first versions
__all__ = ["CATALOGUE", "MODULES"]
