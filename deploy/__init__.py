"""How Concord runs: settings, the local stack (real Kafka and PostgreSQL as processes), migrations, the CLI."""
