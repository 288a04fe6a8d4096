-- Which agent has the fewest open cases is asked at every submission (`services.bureau.service.AGENT_LOAD`): the open
-- cases by agent, so that the answer costs the open cases, not a scan of every case ever opened (10.5 ms a
-- submission with 10,000 cases). The predicate is the query's own, word for word, or the planner cannot use it.
CREATE INDEX cases_open_by_agent ON bureau.cases (agent) WHERE status NOT IN ('completed', 'rejected', 'closed');
