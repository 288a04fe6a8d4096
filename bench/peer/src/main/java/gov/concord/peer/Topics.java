package gov.concord.peer;

/** The exchange's topic names under a namespace, as contracts/topics.py names them. */
record Topics(String namespace) {

    private String named(String name) {
        return namespace.isEmpty() ? name : namespace + "." + name;
    }

    String ingress(String department) {
        return named("ingress." + department);
    }

    String deliver(String department) {
        return named("deliver." + department);
    }

    String deadletter(String department) {
        return named("deadletter." + department);
    }

    String shared(String contractId) {
        return named("shared." + contractId);
    }

    String audit() {
        return named("audit.exchange");
    }
}
