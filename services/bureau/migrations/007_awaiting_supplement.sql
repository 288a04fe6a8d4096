-- Which cases wait for their applicant's supplement is asked by every page of cases waiting for their applicant (the
-- front desk's and the enterprises' view): the requests awaiting a supplement by case, so that the answer costs those
-- requests, not a scan of every request by its status (70 ms a page of 200 cases after the 10,000-case demo).
CREATE INDEX ON bureau.requests (case_id) WHERE status = 'awaiting_supplement';
