-- 0012: call-back reminders (issue 13) and the `employee` role (masters who log in only to see their reminders).
--
-- `reminders`: one row per reminder: who is to call back (`employee` the script's employee id, its name and
-- `extension` on `pbx`; `user_name` the panel user of that employee when one was known), the client's number
-- (`number`, and `number_key`, its cti.phones.normalize_number key the closing rule compares), the client (`contact_id`
-- of the directory, `client_name`, and `card`: a JSON summary of the card as it was then, so the assignee's panel
-- shows it without reading the directory), the note, when it is due (`due_at`), when and by whom it was made
-- (`created_by`: the agent's extension or a user's name), what it came from (`run_id`, the script run; `linkedid`,
-- the call), its status, how it was closed (`closed_how`: 'call', an answered call between the extension and the
-- number, cti/reminders.py; 'hand', with a comment), and the two times the ticker sets once each, on one node
-- (ui_bridge/reminders.py): `notified_at` (pushed as due) and `escalated_at` (overdue: to the admins).
-- Times: epoch seconds.
CREATE TABLE reminders (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    pbx             TEXT NOT NULL,
    employee        TEXT NOT NULL,
    employee_name   TEXT NOT NULL,
    extension       TEXT,
    user_name       TEXT,
    number          TEXT NOT NULL,
    number_key      TEXT,
    contact_id      INTEGER,
    client_name     TEXT,
    card            TEXT,
    note            TEXT,
    due_at          REAL NOT NULL,
    created_at      REAL NOT NULL,
    created_by      TEXT,
    run_id          INTEGER,
    linkedid        TEXT,
    status          TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'done', 'cancelled')),
    closed_how      TEXT CHECK (closed_how IN ('call', 'hand')),
    closed_at       REAL,
    closed_by       TEXT,
    closed_linkedid TEXT,
    comment         TEXT,
    notified_at     REAL,
    escalated_at    REAL
);
-- One reminder per run and step (a retried hand-over makes no second one).
CREATE UNIQUE INDEX reminders_run ON reminders (run_id, employee, due_at) WHERE run_id IS NOT NULL;
-- The open ones by due time (an admin's list), and the ticker's two questions, each a partial index of the open
-- reminders it has not marked yet, so reminders left open for months cost the once-a-second look nothing.
CREATE INDEX reminders_open_due ON reminders (due_at, id) WHERE status = 'open';
CREATE INDEX reminders_to_push ON reminders (due_at) WHERE status = 'open' AND notified_at IS NULL;
CREATE INDEX reminders_to_escalate ON reminders (due_at) WHERE status = 'open' AND escalated_at IS NULL;
-- An assignee's own list, and the call that closes a number's reminders.
CREATE INDEX reminders_extension ON reminders (pbx, extension, status, due_at);
CREATE INDEX reminders_user ON reminders (user_name, status, due_at) WHERE user_name IS NOT NULL;
CREATE INDEX reminders_number ON reminders (pbx, number_key) WHERE status = 'open';

-- -- users: the `employee` role -----------------------------------------------------------------------------------
-- As 0010 did for `integration`: SQLite cannot change a CHECK in place, so the users table is rebuilt, the tables
-- that reference it (api_tokens, sessions) set aside in temporary copies, dropped first and made again.
CREATE TEMP TABLE api_tokens_0012 AS SELECT * FROM api_tokens;
CREATE TEMP TABLE sessions_0012 AS SELECT * FROM sessions;
DROP TABLE api_tokens;
DROP TABLE sessions;

CREATE TABLE users_0012 (
    name          TEXT PRIMARY KEY NOT NULL COLLATE NOCASE,
    role          TEXT NOT NULL CHECK (role IN ('agent', 'admin', 'qa', 'integration', 'employee')),
    extension     TEXT,
    display_name  TEXT,
    password_hash TEXT,
    created_at    REAL NOT NULL,
    pbxs          TEXT NOT NULL DEFAULT '[]',
    CHECK (role != 'agent' OR extension IS NOT NULL),
    CHECK (role != 'employee' OR extension IS NOT NULL)
);
INSERT INTO users_0012 (name, role, extension, display_name, password_hash, created_at, pbxs)
SELECT name, role, extension, display_name, password_hash, created_at, pbxs FROM users ORDER BY rowid;
DROP TABLE users;
ALTER TABLE users_0012 RENAME TO users;

CREATE TABLE api_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    user_name  TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    label      TEXT,
    created_at REAL NOT NULL
);
CREATE INDEX api_tokens_user ON api_tokens (user_name);
INSERT INTO api_tokens SELECT * FROM temp.api_tokens_0012;
DROP TABLE temp.api_tokens_0012;

CREATE TABLE sessions (
    token_hash   TEXT PRIMARY KEY NOT NULL,
    user_name    TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE ON UPDATE CASCADE,
    created_at   REAL NOT NULL,
    last_used_at REAL NOT NULL,
    expires_at   REAL NOT NULL,
    address      TEXT
);
CREATE INDEX sessions_user ON sessions (user_name);
CREATE INDEX sessions_expires ON sessions (expires_at);
INSERT INTO sessions SELECT * FROM temp.sessions_0012;
DROP TABLE temp.sessions_0012;
