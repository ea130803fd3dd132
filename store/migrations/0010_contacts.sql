-- 0010: the contact register (issue 13) and the `integration` role (a DMS such as 1C:Alfa-Auto setting stages).
--
-- `contact_register`: one row per registered contact (a script run that ended at a `register` step; what it holds is
-- cti/contacts_register.py's RegisteredContact). `run_key` makes saving a run idempotent: a retried save finds the
-- row the first one made. The client is the directory's contact (`client_id`; a new client is created in the directory
-- in the same transaction); its name, phone and kind are kept as they were then, so a listing needs no join and a
-- contact stays readable if the directory's card is changed or deleted. `is_repeat`: the client had an earlier contact
-- or call within [directory] repeat_days (the caller card's rule, cti/directory.py). `route` is a JSON list of step
-- ids, `answers` a JSON object (step -> answer), `times` a JSON list of [step, entered_at, left_at]. The stage flags
-- are a time each, with who or what set them (`*_by`: a user's name, `script`) and, for a DMS, its own id of the
-- event (`*_external_id`: the same id sent twice changes nothing). Times: epoch seconds.
--
-- The listing's order is (at, id); every filter has an index that starts with it and ends with that order, so a page
-- is read off an index whatever the filter: a stage filter through a partial index of the contacts with that flag.
CREATE TABLE contact_register (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    run_key             TEXT NOT NULL UNIQUE,
    at                  REAL NOT NULL,
    finished_at         REAL NOT NULL,
    channel             TEXT NOT NULL CHECK (channel IN ('phone', 'visit', 'internet', 'mobile', 'invitation')),
    pbx                 TEXT,
    agent               TEXT,
    client_id           INTEGER REFERENCES contacts (id) ON DELETE SET NULL,
    vehicle_id          INTEGER REFERENCES vehicles (id) ON DELETE SET NULL,
    client_name         TEXT,
    client_phone        TEXT,
    client_kind         TEXT CHECK (client_kind IN ('private', 'corporate', 'partner', 'employee')),
    client_new          INTEGER NOT NULL DEFAULT 0 CHECK (client_new IN (0, 1)),
    is_repeat           INTEGER NOT NULL DEFAULT 0 CHECK (is_repeat IN (0, 1)),
    reason              TEXT,
    route               TEXT NOT NULL DEFAULT '[]',
    answers             TEXT NOT NULL DEFAULT '{}',
    times               TEXT NOT NULL DEFAULT '[]',
    employee            TEXT,
    employee_name       TEXT,
    employee_extension  TEXT,
    transfer_answered   INTEGER CHECK (transfer_answered IN (0, 1)),
    workshop            TEXT,
    earlier_call        TEXT,
    earlier_contact     INTEGER,
    script              TEXT NOT NULL,
    version             TEXT NOT NULL,
    label               TEXT,
    note                TEXT,
    saved_at            REAL NOT NULL,
    request_at          REAL,
    request_by          TEXT,
    request_external_id TEXT,
    booking_at          REAL,
    booking_by          TEXT,
    booking_external_id TEXT,
    visit_at            REAL,
    visit_by            TEXT,
    visit_external_id   TEXT
);
CREATE INDEX contact_register_at ON contact_register (at, id);
CREATE INDEX contact_register_pbx ON contact_register (pbx, at, id);
CREATE INDEX contact_register_reason ON contact_register (reason, at, id);
CREATE INDEX contact_register_channel ON contact_register (channel, at, id);
CREATE INDEX contact_register_client_kind ON contact_register (client_kind, at, id);
CREATE INDEX contact_register_agent ON contact_register (agent, at, id);
CREATE INDEX contact_register_employee ON contact_register (employee, at, id);
CREATE INDEX contact_register_client ON contact_register (client_id, at);
CREATE INDEX contact_register_request ON contact_register (at, id) WHERE request_at IS NOT NULL;
CREATE INDEX contact_register_booking ON contact_register (at, id) WHERE booking_at IS NOT NULL;
CREATE INDEX contact_register_visit ON contact_register (at, id) WHERE visit_at IS NOT NULL;

-- The calls a contact is about (the call the run was launched for; the recording is the journal row's).
CREATE TABLE contact_calls (
    contact_id INTEGER NOT NULL REFERENCES contact_register (id) ON DELETE CASCADE,
    pbx        TEXT NOT NULL,
    linkedid   TEXT NOT NULL,
    PRIMARY KEY (contact_id, pbx, linkedid)
);
CREATE INDEX contact_calls_call ON contact_calls (linkedid, pbx);

-- -- users: the `integration` role ------------------------------------------------------------------------------
-- SQLite cannot change a CHECK in place: the users table is rebuilt (a copy in the new shape, the old one dropped,
-- the copy renamed). The store keeps foreign_keys ON and dropping a parent table deletes its children's rows, so the
-- tables that reference users (api_tokens, sessions) are set aside in temporary copies, dropped first and made again.
CREATE TEMP TABLE api_tokens_0010 AS SELECT * FROM api_tokens;
CREATE TEMP TABLE sessions_0010 AS SELECT * FROM sessions;
DROP TABLE api_tokens;
DROP TABLE sessions;

CREATE TABLE users_0010 (
    name          TEXT PRIMARY KEY NOT NULL COLLATE NOCASE,
    role          TEXT NOT NULL CHECK (role IN ('agent', 'admin', 'qa', 'integration')),
    extension     TEXT,
    display_name  TEXT,
    password_hash TEXT,
    created_at    REAL NOT NULL,
    pbxs          TEXT NOT NULL DEFAULT '[]',
    CHECK (role != 'agent' OR extension IS NOT NULL)
);
INSERT INTO users_0010 (name, role, extension, display_name, password_hash, created_at, pbxs)
SELECT name, role, extension, display_name, password_hash, created_at, pbxs FROM users ORDER BY rowid;
DROP TABLE users;
ALTER TABLE users_0010 RENAME TO users;

CREATE TABLE api_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    user_name  TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    label      TEXT,
    created_at REAL NOT NULL
);
CREATE INDEX api_tokens_user ON api_tokens (user_name);
INSERT INTO api_tokens SELECT * FROM temp.api_tokens_0010;
DROP TABLE temp.api_tokens_0010;

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
INSERT INTO sessions SELECT * FROM temp.sessions_0010;
DROP TABLE temp.sessions_0010;
