-- A task the desk's rules failed on is parked with the error, for officers to see and decide.
ALTER TABLE {schema}.tasks ADD COLUMN error text;
