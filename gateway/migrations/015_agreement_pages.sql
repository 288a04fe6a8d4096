-- Agreements are listed a page at a time, newest first (`GET /v1/agreements`, `AgreementStore.page`): the page is
-- read from this index instead of sorting every agreement for each page (6,100 after the 10,000-case demo).
CREATE INDEX ON gateway.agreements (requested_at DESC, id);
