-- 0007: several PBXs in one store (issue 11). A linkedid is unique only within its PBX, so every row of a call
-- carries the PBX's short id (`pbx`, config `[[pbx]] id`) and a call is the pair (pbx, linkedid): the same linkedid
-- saved from two PBXs is two calls. Every row written before this migration belongs to the default PBX, 'main'
-- (cti.records.DEFAULT_PBX). Users get the PBXs they belong to (`pbxs`, a JSON list; '[]': every PBX).
--
-- SQLite cannot change a table's key or its UNIQUE constraints in place, so the tables keyed by the linkedid are
-- rebuilt (a copy in the new shape, the old one dropped, the copy renamed), all in the runner's one transaction.
-- The store keeps foreign_keys ON, and dropping a parent table deletes its children's rows (ON DELETE CASCADE):
-- a table that references a rebuilt one (call_agents -> calls, missed_history -> missed) is set aside in a
-- temporary copy, dropped first, and made again afterwards.
--
-- The listing indexes keep the shapes of 0006, each ending with the PBX: the journal's order is (started_at,
-- linkedid, pbx), so a page never skips or repeats two calls that share a linkedid and a start on two PBXs, and a
-- listing of some PBXs checks the PBX in the index.

-- -- the call journal and its agents -------------------------------------------------------------------------

CREATE TEMP TABLE call_agents_0007 AS SELECT * FROM call_agents;
DROP TABLE call_agents;

CREATE TABLE calls_0007 (
    linkedid                 TEXT NOT NULL,
    direction                TEXT NOT NULL CHECK (direction IN ('inbound', 'outbound', 'internal')),
    caller                   TEXT,
    caller_key               TEXT,
    caller_name              TEXT,
    called                   TEXT,
    called_key               TEXT,
    answered                 INTEGER NOT NULL CHECK (answered IN (0, 1)),
    answered_by              TEXT,
    missed_reason            TEXT,
    talk_seconds             REAL NOT NULL,
    transferred_to           TEXT,
    agents_rung_not_answered TEXT NOT NULL DEFAULT '[]',
    recording                TEXT,
    started_at               REAL NOT NULL,
    answered_at              REAL,
    ended_at                 REAL,
    outcome                  TEXT NOT NULL CHECK (outcome IN ('answered', 'missed', 'failed')),
    ring_seconds             REAL NOT NULL DEFAULT 0,
    queue                    TEXT,
    did                      TEXT,
    hangup_cause             INTEGER,
    hangup_cause_txt         TEXT,
    hung_up_by               TEXT,
    recordings               TEXT NOT NULL DEFAULT '[]',
    linkedids                TEXT NOT NULL DEFAULT '[]',
    agents_answered          TEXT NOT NULL DEFAULT '[]',
    complete                 INTEGER NOT NULL DEFAULT 1 CHECK (complete IN (0, 1)),
    legs                     TEXT NOT NULL DEFAULT '[]',
    pbx                      TEXT NOT NULL DEFAULT 'main',
    PRIMARY KEY (linkedid, pbx)
);
INSERT INTO calls_0007 (linkedid, direction, caller, caller_key, caller_name, called, called_key, answered,
                        answered_by, missed_reason, talk_seconds, transferred_to, agents_rung_not_answered, recording,
                        started_at, answered_at, ended_at, outcome, ring_seconds, queue, did, hangup_cause,
                        hangup_cause_txt, hung_up_by, recordings, linkedids, agents_answered, complete, legs, pbx)
SELECT linkedid, direction, caller, caller_key, caller_name, called, called_key, answered, answered_by, missed_reason,
       talk_seconds, transferred_to, agents_rung_not_answered, recording, started_at, answered_at, ended_at, outcome,
       ring_seconds, queue, did, hangup_cause, hangup_cause_txt, hung_up_by, recordings, linkedids, agents_answered,
       complete, legs, 'main'
FROM calls ORDER BY rowid;
DROP TABLE calls;
ALTER TABLE calls_0007 RENAME TO calls;
CREATE INDEX calls_started ON calls (started_at, linkedid, pbx);
CREATE INDEX calls_caller_key ON calls (caller_key, started_at, linkedid, pbx);
CREATE INDEX calls_called_key ON calls (called_key, started_at, linkedid, pbx);
CREATE INDEX calls_direction ON calls (direction, started_at, linkedid, pbx);
CREATE INDEX calls_outcome ON calls (outcome, started_at, linkedid, pbx);

CREATE TABLE call_agents (
    agent             TEXT NOT NULL,
    started_at        REAL NOT NULL,         -- the call's started_at (the listings' order)
    linkedid          TEXT NOT NULL,
    pbx               TEXT NOT NULL DEFAULT 'main',
    rung_not_answered INTEGER NOT NULL DEFAULT 0 CHECK (rung_not_answered IN (0, 1)),
    answered          INTEGER NOT NULL DEFAULT 0 CHECK (answered IN (0, 1)),
    PRIMARY KEY (agent, started_at, linkedid, pbx),
    FOREIGN KEY (linkedid, pbx) REFERENCES calls (linkedid, pbx) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX call_agents_linkedid ON call_agents (linkedid, pbx);
INSERT INTO call_agents (agent, started_at, linkedid, pbx, rung_not_answered, answered)
SELECT agent, started_at, linkedid, 'main', rung_not_answered, answered FROM temp.call_agents_0007;
DROP TABLE temp.call_agents_0007;

-- -- agents' misses --------------------------------------------------------------------------------------------

CREATE TABLE agent_misses_0007 (
    id           INTEGER PRIMARY KEY,
    linkedid     TEXT NOT NULL,
    agent        TEXT NOT NULL,
    rang_at      REAL NOT NULL,
    ring_seconds REAL NOT NULL,
    reason       TEXT NOT NULL,
    answered_by  TEXT,
    caller       TEXT,
    pbx          TEXT NOT NULL DEFAULT 'main',
    UNIQUE (linkedid, agent, rang_at, pbx)
);
INSERT INTO agent_misses_0007 (id, linkedid, agent, rang_at, ring_seconds, reason, answered_by, caller, pbx)
SELECT id, linkedid, agent, rang_at, ring_seconds, reason, answered_by, caller, 'main' FROM agent_misses;
DROP TABLE agent_misses;
ALTER TABLE agent_misses_0007 RENAME TO agent_misses;
CREATE INDEX agent_misses_agent ON agent_misses (agent, rang_at);
CREATE INDEX agent_misses_rang_at ON agent_misses (rang_at);

-- -- the missed-call register and its history -----------------------------------------------------------------

CREATE TEMP TABLE missed_history_0007 AS SELECT * FROM missed_history;
DROP TABLE missed_history;

CREATE TABLE missed_0007 (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    linkedid        TEXT NOT NULL,
    caller          TEXT,
    caller_key      TEXT,
    caller_name     TEXT,
    called          TEXT,
    queue           TEXT,
    reason          TEXT NOT NULL,
    missed_at       REAL NOT NULL,
    ring_seconds    REAL NOT NULL,
    agents_rung     TEXT NOT NULL DEFAULT '[]',
    status          TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    closed_at       REAL,
    closed_by       TEXT CHECK (closed_by IN ('callback', 'called_again', 'manual')),
    closed_linkedid TEXT,
    comment         TEXT,
    pbx             TEXT NOT NULL DEFAULT 'main',
    UNIQUE (linkedid, pbx),
    CHECK ((status = 'open') = (closed_by IS NULL))
);
INSERT INTO missed_0007 (id, linkedid, caller, caller_key, caller_name, called, queue, reason, missed_at,
                         ring_seconds, agents_rung, status, closed_at, closed_by, closed_linkedid, comment, pbx)
SELECT id, linkedid, caller, caller_key, caller_name, called, queue, reason, missed_at, ring_seconds, agents_rung,
       status, closed_at, closed_by, closed_linkedid, comment, 'main'
FROM missed ORDER BY id;
-- An entry's number is never reused: the new table goes on from the largest id the old one ever gave, even if
-- the newest entries were deleted since (AUTOINCREMENT's counter, which DROP TABLE would forget).
DELETE FROM sqlite_sequence WHERE name = 'missed_0007';
INSERT INTO sqlite_sequence (name, seq) SELECT 'missed_0007', seq FROM sqlite_sequence WHERE name = 'missed';
DROP TABLE missed;
ALTER TABLE missed_0007 RENAME TO missed;
CREATE INDEX missed_missed_at ON missed (missed_at);
CREATE INDEX missed_status ON missed (status, missed_at);
CREATE INDEX missed_by_key_status ON missed (caller_key, status, missed_at);
CREATE INDEX missed_by_key ON missed (caller_key, missed_at);

CREATE TABLE missed_history (
    id       INTEGER PRIMARY KEY,
    entry_id INTEGER NOT NULL REFERENCES missed (id) ON DELETE CASCADE,
    at       REAL NOT NULL,
    action   TEXT NOT NULL CHECK (action IN ('opened', 'closed', 'reopened', 'commented')),
    by       TEXT,
    linkedid TEXT,
    comment  TEXT
);
CREATE INDEX missed_history_entry ON missed_history (entry_id, id);
INSERT INTO missed_history (id, entry_id, at, action, by, linkedid, comment)
SELECT id, entry_id, at, action, by, linkedid, comment FROM temp.missed_history_0007 ORDER BY id;
DROP TABLE temp.missed_history_0007;

-- -- live events of calls in progress --------------------------------------------------------------------------

ALTER TABLE live_events ADD COLUMN pbx TEXT NOT NULL DEFAULT 'main';
DROP INDEX live_events_linkedid;
CREATE INDEX live_events_linkedid ON live_events (linkedid, pbx);

-- -- calls attached to a contact by hand -----------------------------------------------------------------------

CREATE TABLE call_contacts_0007 (
    linkedid    TEXT NOT NULL,
    contact_id  INTEGER NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    attached_by TEXT,
    attached_at REAL NOT NULL,
    pbx         TEXT NOT NULL DEFAULT 'main',
    PRIMARY KEY (linkedid, pbx)
);
INSERT INTO call_contacts_0007 (linkedid, contact_id, attached_by, attached_at, pbx)
SELECT linkedid, contact_id, attached_by, attached_at, 'main' FROM call_contacts;
DROP TABLE call_contacts;
ALTER TABLE call_contacts_0007 RENAME TO call_contacts;
CREATE INDEX call_contacts_contact ON call_contacts (contact_id);

-- -- users: the PBXs each one belongs to -----------------------------------------------------------------------

ALTER TABLE users ADD COLUMN pbxs TEXT NOT NULL DEFAULT '[]';
