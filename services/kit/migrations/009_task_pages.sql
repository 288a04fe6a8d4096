-- A desk's tasks are listed a page at a time, oldest first, all of them or of one status
-- (`GET /v1/departments/{code}/tasks`, `PgDeskStore.page`): each page is read from these indexes instead of
-- sorting every task for each page (about 100,000 of planning's after the 10,000-case demo).
CREATE INDEX ON {schema}.tasks (received_at, task_id);
CREATE INDEX ON {schema}.tasks (status, received_at, task_id);
