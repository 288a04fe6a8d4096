"""The shared language of the exchange: event contracts, one module per owning department. No I/O."""

from contracts import bureau, coordination, exchange, market
from contracts.base import CATALOGUE, Contract, Event, Sharing, contract, shared

__all__ = [
    "CATALOGUE", "Contract", "Event", "Sharing", "bureau", "contract", "coordination", "exchange", "market", "shared",
]
