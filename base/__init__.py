"""What every component shares: settings, access to Kafka and PostgreSQL, credentials, HTTP identity, the runtime."""
