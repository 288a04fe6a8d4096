"""Bearer tokens: what parses, and that the secret is checked against its salted hash."""

from __future__ import annotations

from base.tokens import issue, parse


def test_an_issued_token_parses_to_its_parts_and_matches_its_hash() -> None:
    issued = issue("dept")
    presented = parse(issued.token)
    assert presented is not None
    assert (presented.kind, presented.id) == ("dept", issued.id)
    assert presented.matches(issued.salt, issued.hash)
    assert not presented.matches(issued.salt, issue("dept").hash)


def test_only_a_whole_token_parses() -> None:
    token = issue("dept").token
    for presented in (f"{token}\n", f" {token}", token[:-1], f"{token}x", token.replace(".", "_"), ""):
        assert parse(presented) is None, repr(presented)
