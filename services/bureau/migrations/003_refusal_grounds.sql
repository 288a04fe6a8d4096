-- The statutory grounds a department gave for a refusal (contracts.bureau.RefusalGround): a refusal that has
-- one binds the coordination office.
ALTER TABLE bureau.requests ADD COLUMN grounds jsonb NOT NULL DEFAULT '[]';
