"""The names of the exchange's topics, optionally under a namespace (one exchange per namespace on a
shared cluster: a district, a test run, a benchmark)."""

from __future__ import annotations

from dataclasses import dataclass

from contracts.departments import DEPARTMENTS


@dataclass(frozen=True)
class Topics:
    namespace: str = ""

    def _named(self, name: str) -> str:
        return f"{self.namespace}.{name}" if self.namespace else name

    def ingress(self, department: str) -> str:
        """Where a department publishes. Only the gateway reads it."""
        return self._named(f"ingress.{department}")

    def deliver(self, department: str) -> str:
        """What the gateway delivers to a department, cut to the fields it may see."""
        return self._named(f"deliver.{department}")

    def deadletter(self, department: str) -> str:
        """A department's refused events: the original bytes and the reason."""
        return self._named(f"deadletter.{department}")

    def shared(self, contract_id: str) -> str:
        """The exchange's record of a contract's events (not-shared fields removed)."""
        return self._named(f"shared.{contract_id}")

    @property
    def audit(self) -> str:
        return self._named("audit.exchange")

    @property
    def audit_anchor(self) -> str:
        """The audit chain's signed heads (compacted, one key per chain). Only the gateway writes it."""
        return self._named("audit.anchor")

    def sender_of(self, ingress_topic: str) -> str | None:
        """The sending department is where a message entered, never a field the sender fills in."""
        prefix = self._named("ingress.")
        code = ingress_topic[len(prefix):] if ingress_topic.startswith(prefix) else ""
        return code if code in DEPARTMENTS else None


TOPICS = Topics()
