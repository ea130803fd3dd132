-- 0006: every filter the CLI, the panel and the reports offer is served by an index, so that a listing costs
-- the rows it returns, not the years of calls behind them (issue 10: on a store of 2,000,000 calls an agent's
-- calls took 38 s through json_each of every row, `--since 7d` 108 s, a caller's card read all their calls).
--
-- call_agents: the agents of each call in their own table, one row per (call, agent), written with the call
-- (store/sqlite/writer.py) and backfilled here from the rows' JSON lists. The key starts with the agent and the
-- call's start, so "this agent's calls, newest first" reads the index in order and stops at the page's end.
CREATE TABLE call_agents (
    agent             TEXT NOT NULL,
    started_at        REAL NOT NULL,         -- the call's started_at (the listings' order)
    linkedid          TEXT NOT NULL REFERENCES calls (linkedid) ON DELETE CASCADE,
    rung_not_answered INTEGER NOT NULL DEFAULT 0 CHECK (rung_not_answered IN (0, 1)),
    answered          INTEGER NOT NULL DEFAULT 0 CHECK (answered IN (0, 1)),
    PRIMARY KEY (agent, started_at, linkedid)
) WITHOUT ROWID;
CREATE INDEX call_agents_linkedid ON call_agents (linkedid);

INSERT INTO call_agents (agent, started_at, linkedid, rung_not_answered, answered)
SELECT agent, started_at, linkedid, max(rung_not_answered), max(answered) FROM (
    SELECT c.linkedid, c.started_at, j.value AS agent, 1 AS rung_not_answered, 0 AS answered
    FROM calls c, json_each(c.agents_rung_not_answered) j
    UNION ALL
    SELECT c.linkedid, c.started_at, j.value, 0, 1 FROM calls c, json_each(c.agents_answered) j
    UNION ALL
    SELECT linkedid, started_at, answered_by, 0, 1 FROM calls WHERE answered_by IS NOT NULL
)
WHERE agent IS NOT NULL AND agent != ''
GROUP BY agent, started_at, linkedid;

-- The journal's order is (started_at, linkedid): each index ends with both, so that a page is read in order
-- straight off the index and the next page starts where the last one ended (keyset paging, no sort, no OFFSET).
DROP INDEX calls_started_at;
CREATE INDEX calls_started ON calls (started_at, linkedid);
-- A number is matched on either side: one index per side, each in the journal's order, so "the caller's six
-- newest calls" is two LIMITed index walks whatever the caller's history.
DROP INDEX calls_caller_key;
CREATE INDEX calls_caller_key ON calls (caller_key, started_at, linkedid);
DROP INDEX calls_called_key;
CREATE INDEX calls_called_key ON calls (called_key, started_at, linkedid);
DROP INDEX calls_direction;
CREATE INDEX calls_direction ON calls (direction, started_at, linkedid);
DROP INDEX calls_outcome;
CREATE INDEX calls_outcome ON calls (outcome, started_at, linkedid);
-- The agent filter reads call_agents now.
DROP INDEX calls_answered_by;

-- The register: a number's entries (open ones for the card and the call-back rule) in the register's order
-- (missed_at, then id, which every index of a rowid table ends with).
DROP INDEX missed_open_by_key;
CREATE INDEX missed_by_key_status ON missed (caller_key, status, missed_at);
CREATE INDEX missed_by_key ON missed (caller_key, missed_at);
