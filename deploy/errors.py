"""How a ``concord`` command fails: one line that says what went wrong and what to do, and exit status 1. The
traceback is shown only with ``concord --debug …``."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from base.settings import Settings


def explain(error: BaseException, settings: Settings) -> str:
    """One line for an error a command met. Third-party types are imported here, when there is an error."""
    import asyncpg
    import httpx
    from aiokafka.errors import KafkaConnectionError, KafkaError
    from pydantic import ValidationError

    from base.errors import Explained

    if isinstance(error, Explained):
        return str(error)
    if isinstance(error, httpx.TransportError):
        url = error.request.url if _has_request(error) else None
        where = f"{url.scheme}://{url.host}:{url.port}" if url else "the API"
        return f"cannot reach {_service_at(where, settings)} at {where} ({type(error).__name__}): " \
               f"{_start_remedy(where, settings)}"
    if isinstance(error, KafkaConnectionError):
        return f"cannot reach Kafka at {settings.bootstrap}: `concord stack up` starts it (`concord stack status`)"
    if isinstance(error, KafkaError):
        return f"Kafka refused: {type(error).__name__} {error}"
    if isinstance(error, asyncpg.InvalidPasswordError | asyncpg.InvalidAuthorizationSpecificationError):
        return f"PostgreSQL refused the credentials: {error} (`concord stack up` provisions the roles' passwords)"
    if isinstance(error, asyncpg.PostgresError):
        return f"PostgreSQL: {error} ({type(error).__name__})"
    if isinstance(error, ConnectionRefusedError | OSError) and _is_connection_refused(error):
        return f"connection refused ({error}): `concord stack status` says what runs, `concord stack up` starts " \
               "Kafka and PostgreSQL"
    if isinstance(error, ValidationError):
        problems = [f"{'.'.join(str(p) for p in e['loc']) or 'input'}: {e['msg']}" for e in error.errors()[:3]]
        more = f" (and {error.error_count() - 3} more)" if error.error_count() > 3 else ""
        return f"invalid {error.title}: " + "; ".join(problems) + more
    if isinstance(error, FileNotFoundError):
        return f"no such file: {error.filename}"
    if isinstance(error, json.JSONDecodeError):
        return f"not JSON: {error}"
    return f"{type(error).__name__}: {error} (`concord --debug …` shows the traceback)"


def reached_nothing(error: BaseException) -> bool:
    """Whether the error is that a service could not be reached or read (not a fault of the command)."""
    import httpx
    from aiokafka.errors import KafkaConnectionError
    from pydantic import ValidationError

    return isinstance(error, httpx.TransportError | KafkaConnectionError | ValidationError | FileNotFoundError
                      | json.JSONDecodeError) or _is_connection_refused(error)


def _has_request(error: BaseException) -> bool:
    try:
        error.request  # type: ignore[attr-defined]  # noqa: B018
    except RuntimeError:  # httpx raises when the error was made without a request
        return False
    return True


def _service_at(where: str, settings: Settings) -> str:
    return {f"http://{settings.gateway_host}:{settings.gateway_port}": "the gateway",
            f"http://{settings.bureau_host}:{settings.bureau_port}": "the bureau's API",
            f"http://{settings.departments_host}:{settings.departments_port}": "the departments' API",
            settings.gateway_address.rstrip("/"): "the gateway"}.get(where, "the API")


def _start_remedy(where: str, settings: Settings) -> str:
    service = _service_at(where, settings)
    command = {"the gateway": "concord gateway run", "the bureau's API": "concord service run bureau",
               "the departments' API": "concord service run departments"}.get(service)
    started = f"`{command}` starts it" if command else "is it running?"
    return f"{started} (or `make demo` starts everything)"


def _is_connection_refused(error: BaseException) -> bool:
    import errno

    if isinstance(error, ConnectionRefusedError):
        return True
    causes = getattr(error, "exceptions", None) or []  # asyncpg: "Multiple exceptions" from every address tried
    return bool(causes) and all(getattr(c, "errno", None) == errno.ECONNREFUSED for c in causes)
