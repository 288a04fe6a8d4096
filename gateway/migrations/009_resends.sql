-- What each seen event said, as a digest of its key, value and content-bearing headers
-- (gateway.enforcement.content_digest): the same id again with the same content is a resend (an outbox sends at
-- least once), audited as such and not routed again; with other content it is a duplicate id, refused. Ids seen
-- before this column have none: a copy of one of those is refused as a duplicate, as it was.
ALTER TABLE gateway.seen_events ADD COLUMN digest bytea;
