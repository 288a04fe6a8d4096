"""The ACL plan, derived from the credentials in force and the topic namespaces present."""

from gateway.acls import Acl, Holder, Operation, Pattern, Resource, namespace_of, planned


def rules_of(acls: set[Acl], user: str) -> set[tuple[str, str, str, str]]:
    return {(a.resource.value, a.name, a.pattern.value, a.operation.value) for a in acls if a.user == user}


def test_a_department_writes_its_ingress_reads_its_deliveries_and_dead_letters_and_uses_its_own_groups() -> None:
    acls = planned([Holder("planning", "planning.abc")], ["", "bench1"])
    assert rules_of(acls, "planning.abc") == {
        ("TOPIC", "ingress.planning", "LITERAL", "WRITE"), ("TOPIC", "deliver.planning", "LITERAL", "READ"),
        ("TOPIC", "deadletter.planning", "LITERAL", "READ"),
        ("TOPIC", "bench1.ingress.planning", "LITERAL", "WRITE"),
        ("TOPIC", "bench1.deliver.planning", "LITERAL", "READ"),
        ("TOPIC", "bench1.deadletter.planning", "LITERAL", "READ"),
        ("GROUP", "planning", "LITERAL", "READ"), ("GROUP", "planning.", "PREFIXED", "READ"),
        ("TRANSACTIONAL_ID", "planning", "LITERAL", "WRITE"), ("TRANSACTIONAL_ID", "planning.", "PREFIXED", "WRITE"),
    }


def test_the_gateway_routes_every_family_and_the_operator_reads_only_the_audit_anchors() -> None:
    acls = planned([Holder("gateway", "gateway.x"), Holder("operator", "operator.y")], ["", "bench1"])
    assert rules_of(acls, "operator.y") == {("TOPIC", "audit.anchor", "LITERAL", "READ"),
                                            ("TOPIC", "bench1.audit.anchor", "LITERAL", "READ")}
    gateway = rules_of(acls, "gateway.x")
    assert ("TOPIC", "ingress.", "PREFIXED", "READ") in gateway and ("TOPIC", "shared.", "PREFIXED", "WRITE") in gateway
    assert ("TOPIC", "audit.exchange", "LITERAL", "WRITE") in gateway
    assert {("TOPIC", "audit.anchor", "LITERAL", "WRITE"), ("TOPIC", "audit.anchor", "LITERAL", "READ")} <= gateway
    writers = {a.user for a in acls if a.name.endswith("audit.anchor") and a.operation is Operation.WRITE}
    assert writers == {"gateway.x"}  # only the gateway (its audit keeper) writes anchors
    assert ("GROUP", "gateway.", "PREFIXED", "READ") in gateway
    assert ("TOPIC", "deliver.", "PREFIXED", "READ") in gateway  # operators tail it, masked, through the gateway
    assert ("GROUP", "*", "LITERAL", "DESCRIBE") in gateway  # every group's lag
    assert not [r for r in gateway if r[0] == "GROUP" and r[3] == "READ" and not r[1].startswith("gateway")]


def test_every_credential_of_a_principal_gets_its_rules_and_nobody_else_gets_any() -> None:
    acls = planned([Holder("water", "water.old"), Holder("water", "water.new"), Holder("nobody", "nobody.z")], [""])
    assert rules_of(acls, "water.old") == rules_of(acls, "water.new") != set()
    assert not rules_of(acls, "nobody.z")
    assert all(a.operation in (Operation.READ, Operation.WRITE) for a in acls)
    assert {a.resource for a in acls} == {Resource.TOPIC, Resource.GROUP, Resource.TRANSACTIONAL_ID}
    assert {a.pattern for a in acls} == {Pattern.LITERAL, Pattern.PREFIXED}


def test_namespaces_are_read_from_the_names_of_the_exchange_s_topics() -> None:
    assert namespace_of("audit.exchange") == "" and namespace_of("shared.bureau.case-submitted") == ""
    assert namespace_of("audit.anchor") == "" and namespace_of("bench1.audit.anchor") == "bench1"
    assert namespace_of("bench1.ingress.planning") == "bench1"
    assert namespace_of("inbox-x.deliver.coordination") == "inbox-x"
    assert namespace_of("__consumer_offsets") is None and namespace_of("bench1.raw.out") is None
