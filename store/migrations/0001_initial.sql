-- 0001: the call journal, the missed-call register with its history, per-agent misses, and the
-- journal of events of calls still in progress.
--
-- Applied by store/migrate.py inside one transaction together with `PRAGMA user_version = 1`.
-- Times are epoch seconds (REAL); tuples of CallRecord/MissedEntry are JSON arrays in TEXT columns.

-- One row per finished call (CallRecord), keyed by its Linkedid; a later record for the same linkedid
-- replaces the row (upsert). caller_key / called_key are the normalised numbers (cti.phones) the journal
-- filters and the call-back matching use; `legs` is the JSON list of LegRecord objects.
CREATE TABLE calls (
    linkedid                 TEXT PRIMARY KEY NOT NULL,
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
    legs                     TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX calls_started_at ON calls (started_at);
CREATE INDEX calls_caller_key ON calls (caller_key);
CREATE INDEX calls_called_key ON calls (called_key);
CREATE INDEX calls_answered_by ON calls (answered_by);
CREATE INDEX calls_direction ON calls (direction, started_at);
CREATE INDEX calls_outcome ON calls (outcome, started_at);

-- An agent whose phone rang for a call and who did not answer it.
CREATE TABLE agent_misses (
    id           INTEGER PRIMARY KEY,
    linkedid     TEXT NOT NULL,
    agent        TEXT NOT NULL,
    rang_at      REAL NOT NULL,
    ring_seconds REAL NOT NULL,
    reason       TEXT NOT NULL,
    answered_by  TEXT,
    caller       TEXT,
    UNIQUE (linkedid, agent, rang_at)
);
CREATE INDEX agent_misses_agent ON agent_misses (agent, rang_at);
CREATE INDEX agent_misses_rang_at ON agent_misses (rang_at);

-- The missed-call register. AUTOINCREMENT: an entry's number is shown to people and must never be
-- reused, even after the newest entry is deleted.
CREATE TABLE missed (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    linkedid        TEXT NOT NULL UNIQUE,
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
    CHECK ((status = 'open') = (closed_by IS NULL))
);
-- The call-back match: open entries of one normalised number.
CREATE INDEX missed_open_by_key ON missed (caller_key, status);
CREATE INDEX missed_missed_at ON missed (missed_at);
CREATE INDEX missed_status ON missed (status, missed_at);

-- What happened to a missed entry, in order: the call-back history.
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

-- Events of calls in progress, so a daemon killed mid-call can rebuild them on restart; a call's rows
-- are deleted in the transaction that saves its CallRecord. `headers` is a JSON list of [key, value].
CREATE TABLE live_events (
    seq         INTEGER PRIMARY KEY,
    linkedid    TEXT NOT NULL,
    headers     TEXT NOT NULL,
    received_at REAL NOT NULL
);
CREATE INDEX live_events_linkedid ON live_events (linkedid);
