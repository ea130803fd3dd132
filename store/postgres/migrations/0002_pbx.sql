-- 0002: several PBXs in one store (issue 11), as the SQLite store's 0007. A linkedid is unique only within its
-- PBX, so every row of a call carries the PBX's short id (`pbx`, config `[[pbx]] id`) and a call is the pair
-- (pbx, linkedid): the same linkedid saved from two PBXs is two calls. Every row written before this migration
-- belongs to the default PBX, 'main' (cti.records.DEFAULT_PBX): a column added with a constant default is filled
-- without rewriting the table. Users get the PBXs they belong to (`pbxs`; empty: every PBX).
--
-- The listing indexes keep the shapes of 0001, each ending with the PBX: the journal's order is (started_at,
-- linkedid, pbx), so a page never skips or repeats two calls that share a linkedid and a start on two PBXs, and a
-- listing of some PBXs checks the PBX in the index. `pbx` is COLLATE "C" as linkedid is: it orders keyset pages.

-- -- the call journal and its agents -------------------------------------------------------------------------
ALTER TABLE calls ADD COLUMN pbx text COLLATE "C" NOT NULL DEFAULT 'main';
ALTER TABLE call_agents ADD COLUMN pbx text COLLATE "C" NOT NULL DEFAULT 'main';
ALTER TABLE call_agents DROP CONSTRAINT call_agents_linkedid_fkey;
ALTER TABLE call_agents DROP CONSTRAINT call_agents_pkey;
ALTER TABLE calls DROP CONSTRAINT calls_pkey;
ALTER TABLE calls ADD CONSTRAINT calls_pkey PRIMARY KEY (linkedid, pbx);
ALTER TABLE call_agents ADD CONSTRAINT call_agents_pkey PRIMARY KEY (agent, started_at, linkedid, pbx);
ALTER TABLE call_agents ADD CONSTRAINT call_agents_call_fkey FOREIGN KEY (linkedid, pbx)
    REFERENCES calls (linkedid, pbx) ON DELETE CASCADE;
DROP INDEX call_agents_linkedid;
CREATE INDEX call_agents_linkedid ON call_agents (linkedid, pbx);

DROP INDEX calls_started;
CREATE INDEX calls_started ON calls (started_at, linkedid, pbx);
DROP INDEX calls_caller_key;
CREATE INDEX calls_caller_key ON calls (caller_key, started_at, linkedid, pbx);
DROP INDEX calls_called_key;
CREATE INDEX calls_called_key ON calls (called_key, started_at, linkedid, pbx);
DROP INDEX calls_direction;
CREATE INDEX calls_direction ON calls (direction, started_at, linkedid, pbx);
DROP INDEX calls_outcome;
CREATE INDEX calls_outcome ON calls (outcome, started_at, linkedid, pbx);

-- -- agents' misses and the missed-call register ------------------------------------------------------------
ALTER TABLE agent_misses ADD COLUMN pbx text COLLATE "C" NOT NULL DEFAULT 'main';
ALTER TABLE agent_misses DROP CONSTRAINT agent_misses_linkedid_agent_rang_at_key;
ALTER TABLE agent_misses ADD CONSTRAINT agent_misses_call_agent_key UNIQUE (linkedid, agent, rang_at, pbx);

ALTER TABLE missed ADD COLUMN pbx text COLLATE "C" NOT NULL DEFAULT 'main';
ALTER TABLE missed DROP CONSTRAINT missed_linkedid_key;
ALTER TABLE missed ADD CONSTRAINT missed_call_key UNIQUE (linkedid, pbx);

-- -- live events of calls in progress, and calls attached to a contact by hand ----------------------------------
ALTER TABLE live_events ADD COLUMN pbx text COLLATE "C" NOT NULL DEFAULT 'main';
DROP INDEX live_events_linkedid;
CREATE INDEX live_events_linkedid ON live_events (linkedid, pbx);

ALTER TABLE call_contacts ADD COLUMN pbx text COLLATE "C" NOT NULL DEFAULT 'main';
ALTER TABLE call_contacts DROP CONSTRAINT call_contacts_pkey;
ALTER TABLE call_contacts ADD CONSTRAINT call_contacts_pkey PRIMARY KEY (linkedid, pbx);

-- -- users: the PBXs each one belongs to -----------------------------------------------------------------------
ALTER TABLE users ADD COLUMN pbxs text[] NOT NULL DEFAULT '{}';
