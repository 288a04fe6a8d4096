"""How a contract is declared: an event model, its id and version, its owner, who may publish it,
who consumes it, and a sharing class on every field."""

from __future__ import annotations

import re
import types
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar, Optional, TypeVar, Union, cast, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, create_model

from contracts.departments import DEPARTMENTS, EXCHANGE
from contracts.masks import Mask
from contracts.sharing import Sharing as Sharing  # where contracts are declared, the class of a field
from contracts.sharing import problems as sharing_problems


def shared(
    description: str,
    *,
    sharing: Sharing = Sharing.UNCONDITIONAL,
    legal_basis: str | None = None,
    mask: Mask | None = None,
    **kwargs: Any,
) -> Any:
    """A field of an event (or of an object an event holds), with its sharing class carried into the JSON Schema
    as ``x-sharing``; a conditional one may declare the ``mask`` a consumer without an agreement sees instead
    (``x-mask``, from ``contracts.masks``)."""
    if sharing is Sharing.CONDITIONAL and not legal_basis:
        raise ValueError(f"conditional field {description!r} needs a legal basis")
    if mask is not None and sharing is not Sharing.CONDITIONAL:
        raise ValueError(f"field {description!r}: only a conditional field has a mask")
    extra: dict[str, Any] = {"x-sharing": sharing.value}
    if legal_basis:
        extra["x-legal-basis"] = legal_basis
    if mask is not None:
        extra["x-mask"] = mask.declared()
    return Field(description=description, json_schema_extra=extra, **kwargs)


class Event(BaseModel):
    """A payload on the exchange: immutable, closed (a field without a sharing class cannot travel)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    CONTRACT: ClassVar[Contract]


CONTRACT_ID_PATTERN = r"^[a-z][a-z0-9]*\.[a-z][a-z0-9-]*$"
CONTRACT_ID = re.compile(CONTRACT_ID_PATTERN)


@dataclass(frozen=True)
class Contract:
    id: str
    version: int
    owner: str
    model: type[Event]
    publishers: frozenset[str]
    consumers: frozenset[str]
    subject_field: str
    recipient_field: str | None = None  # when set, delivered only to the consumer this field names
    description: str = ""

    @property
    def key(self) -> tuple[str, int]:
        return (self.id, self.version)

    @cached_property
    def json_schema(self) -> dict[str, Any]:
        schema = self.model.model_json_schema(mode="serialization")
        schema["$id"] = dataschema_uri(self.id, self.version)
        schema["x-contract"] = {
            "id": self.id,
            "version": self.version,
            "owner": self.owner,
            "publishers": sorted(self.publishers),
            "consumers": sorted(self.consumers),
            "subject": self.subject_field,
            **({"recipient": self.recipient_field} if self.recipient_field else {}),
        }
        return schema


def dataschema_uri(contract_id: str, version: int) -> str:
    """The ``ce_dataschema`` of an event: its contract id and version."""
    return f"urn:concord:contract:{contract_id}:{version}"


def parse_dataschema(uri: str) -> tuple[str, int] | None:
    prefix = "urn:concord:contract:"
    if not uri.startswith(prefix):
        return None
    contract_id, _, version = uri[len(prefix):].rpartition(":")
    return (contract_id, int(version)) if contract_id and version.isdigit() else None


def field_sharing(schema: Mapping[str, Any]) -> dict[str, Sharing]:
    """The sharing class of each top-level field of a contract's JSON Schema."""
    return {name: Sharing(prop.get("x-sharing", Sharing.NOT_SHARED))
            for name, prop in schema.get("properties", {}).items()}


CATALOGUE: dict[tuple[str, int], Contract] = {}

M = TypeVar("M", bound=Event)


def contract(
    id: str,
    *,
    version: int,
    consumers: Iterable[str],
    subject: str = "case_id",
    publishers: Iterable[str] = (),
    recipient: str | None = None,
) -> Callable[[type[M]], type[M]]:
    """Declare an event model as a contract. The owner is the id's prefix and may always publish it."""

    def declare(model: type[M]) -> type[M]:
        owner = id.partition(".")[0]
        if not CONTRACT_ID.fullmatch(id):
            raise ValueError(f"contract id {id!r} is not <owner>.<name>")
        members = {owner, *publishers, *consumers}
        unknown = members - set(DEPARTMENTS) - {EXCHANGE}
        if unknown:
            raise ValueError(f"contract {id}: unknown departments {sorted(unknown)}")
        fields = model.model_fields
        unclassed = [n for n, f in fields.items()
                     if not isinstance(f.json_schema_extra, dict) or "x-sharing" not in f.json_schema_extra]
        if unclassed:
            raise ValueError(f"contract {id}: fields without a sharing class: {unclassed}")
        if subject not in fields or (recipient is not None and recipient not in fields):
            raise ValueError(f"contract {id}: subject or recipient field missing")
        declared = Contract(
            id=id, version=version, owner=owner, model=model,
            publishers=frozenset({owner, *publishers}), consumers=frozenset(consumers),
            subject_field=subject, recipient_field=recipient, description=(model.__doc__ or "").strip(),
        )
        unapplied = sharing_problems(declared.json_schema)
        if unapplied:
            raise ValueError(f"contract {id}: classes the gateway cannot apply: {'; '.join(unapplied)}")
        if declared.key in CATALOGUE:
            raise ValueError(f"contract {id} v{version} declared twice")
        CATALOGUE[declared.key] = declared
        model.CONTRACT = declared
        return model

    return declare


_VIEWS: dict[type[BaseModel], type[BaseModel]] = {}

B = TypeVar("B", bound=BaseModel)


def received_view(model: type[B]) -> type[B]:
    """The model as a consumer receives it: a member that is not unconditional may have been withheld by the
    gateway, so it is optional (None when withheld), and a masked one may hold its mask's string instead of its
    value; the same for the members of the objects it holds. A subclass, so handlers stay typed. A field without a
    class of a model an event holds has the class of what holds it: it comes whole with it."""
    if model not in _VIEWS:
        overrides: dict[str, Any] = {}
        top = issubclass(model, Event)
        for name, info in model.model_fields.items():
            extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
            annotation = _received(info.annotation)
            declared = extra.get("x-sharing")
            if (declared if top else declared or Sharing.UNCONDITIONAL) != Sharing.UNCONDITIONAL:
                if "x-mask" in extra:
                    annotation = Union[annotation, str]  # noqa: UP007 (a runtime type)
                overrides[name] = (Optional[annotation], None)  # noqa: UP045 (a runtime type)
            elif annotation is not info.annotation:
                overrides[name] = (annotation, info)
        _VIEWS[model] = create_model(f"{model.__name__}Received", __base__=model, **overrides) if overrides else model
    return cast(type[B], _VIEWS[model])


def _received(annotation: Any) -> Any:
    """A type with the models it holds replaced by their views."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return received_view(annotation)
    args = get_args(annotation)
    if not args:
        return annotation
    viewed = tuple(_received(a) for a in args)
    if viewed == args:
        return annotation
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        return Union[viewed]  # noqa: UP007 (a runtime type)
    return origin[viewed] if len(viewed) > 1 else origin[viewed[0]]
