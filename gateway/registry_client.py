"""The contract registry through the gateway's HTTP API, as the ``concord contracts`` commands use it: typed
answers, and every way the call can fail as a ``RegistryUnavailable`` whose message says what to do."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any

from base.errors import Explained
from contracts.compatibility import Mode

if TYPE_CHECKING:  # imported when a client is made: `concord contracts compat` on files never needs them
    import httpx

    from gateway.registry import Refusal


class RegistryUnavailable(Explained):
    """The registry could not answer the question (gateway down, token refused, an error of its own)."""


@dataclass(frozen=True)
class RegisteredContract:
    id: str
    owner: str
    mode: Mode
    versions: list[int]


@dataclass(frozen=True)
class Registration:
    """The registry's answer to a registration: the version (registered now, or already), or why not."""

    version: int | None
    created: bool = False
    refusal: Refusal | None = None
    problems: list[str] = field(default_factory=list)
    next_version: int | None = None
    mode: Mode | None = None


class RegistryClient:
    def __init__(self, address: str, token: str | None = None, timeout: float = 30.0) -> None:
        import httpx

        self.address = address
        self.timeout = timeout
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=address, headers=headers, timeout=timeout)

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._http.close()

    def whoami(self) -> str:
        return str(self._call("GET", "/v1/whoami")[1]["principal"])

    def contracts(self) -> dict[str, RegisteredContract]:
        return {c["id"]: RegisteredContract(c["id"], c["owner"], Mode(c["compatibility"]), list(c["versions"]))
                for c in self._call("GET", "/v1/contracts")[1]}

    def schema(self, contract_id: str, version: int) -> dict[str, Any]:
        found: dict[str, Any] = self._call("GET", f"/v1/contracts/{contract_id}/versions/{version}/schema")[1]
        return found

    def register(self, contract_id: str, schema: dict[str, Any]) -> Registration:
        from gateway.registry import Refusal

        status, body = self._call("POST", f"/v1/contracts/{contract_id}/versions", {403, 409, 422},
                                  json={"schema": schema})
        if status < 400:
            return Registration(body["version"], created=body["created"])
        if "kind" not in body:  # the body itself was malformed (FastAPI's validation answer)
            problems = [f"{'.'.join(map(str, e.get('loc', [])))}: {e.get('msg')}" for e in body.get("detail", [])]
            return Registration(None, refusal=Refusal.INVALID, problems=problems or [str(body)[:300]])
        mode = body.get("compatibility")
        return Registration(None, refusal=Refusal(body["kind"]),
                            problems=body.get("incompatibilities") or body.get("problems") or [body["detail"]],
                            next_version=body.get("next_version"), mode=Mode(mode) if mode else None)

    def _call(self, method: str, path: str, answered: set[int] | frozenset[int] = frozenset(),
              **kwargs: Any) -> tuple[int, Any]:
        """The status and JSON of an answer that is a success or one of the ``answered`` statuses; any other answer
        (or none) is a ``RegistryUnavailable``."""
        import httpx

        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.ConnectError as exc:
            raise RegistryUnavailable(
                f"cannot reach the gateway at {self.address}: start it with `concord gateway run` (on the local "
                "stack, after `concord stack up`), or point CONCORD_GATEWAY_URL at one that runs") from exc
        except httpx.TimeoutException as exc:
            raise RegistryUnavailable(f"the gateway at {self.address} did not answer within {self.timeout:g} s "
                                      "(is it overloaded, or is that address not a gateway?)") from exc
        except httpx.HTTPError as exc:
            raise RegistryUnavailable(f"talking to the gateway at {self.address} failed: "
                                      f"{type(exc).__name__}: {exc}") from exc
        if not response.is_error or response.status_code in answered:
            try:
                return response.status_code, response.json()
            except ValueError as exc:
                raise RegistryUnavailable(f"{self.address} answered {method} {path} with something other than "
                                          "JSON: is CONCORD_GATEWAY_URL the gateway's address?") from exc
        if response.status_code == 401:
            raise RegistryUnavailable(
                "the gateway refused the token (401: revoked, mistyped or of another exchange): give a department's "
                "current http_token with --token or CONCORD_TOKEN (`concord credentials issue DEPT` makes one)")
        raise RegistryUnavailable(f"the gateway at {self.address} answered {method} {path} with "
                                  f"{response.status_code}: {_detail(response)}")


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail", response.text)
    except ValueError:
        detail = response.text
    return " ".join(str(detail).split())[:300]
