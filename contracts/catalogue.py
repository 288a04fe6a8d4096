"""Every contract declared in code, by (id, version). Importing this module declares them all: the modules
of contracts register themselves in ``contracts.base.CATALOGUE`` when they are imported."""

from __future__ import annotations

from contracts import bureau, coordination, exchange, market
from contracts.base import CATALOGUE

MODULES = (bureau, coordination, exchange, market)  # one module per owning department
__all__ = ["CATALOGUE", "MODULES"]
