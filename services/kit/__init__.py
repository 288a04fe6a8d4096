"""The department kit: a FastStream app with typed handlers, inbox and outbox on PostgreSQL, the clock."""
