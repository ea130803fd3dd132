-- 0001: the whole schema of the PostgreSQL store, as the SQLite store's 0001-0006 leave theirs: the call journal
-- with its agents' table, the missed-call register and its history, agents' misses, the live events of calls in
-- progress, panel users with their tokens and sessions, and the client directory.
--
-- Applied by store/postgres/migrate.py in one transaction together with the schema_version row.
-- Times are epoch seconds (double precision), exactly as the records carry them, so rows round-trip unchanged.
-- Text that orders a listing or a keyset page (linkedid, agent, name_key) is COLLATE "C": byte order, the
-- SQLite store's order, whatever the database's locale (a locale's collation would put "call-10" and "call1"
-- in another order than Python's and SQLite's, and a keyset page would skip or repeat rows).

-- One row per finished call (CallRecord), keyed by its Linkedid; a later record for the same linkedid replaces
-- the row. caller_key / called_key are the numbers normalised by cti.phones. Tuples are text[]; the legs are one
-- json list (stored as written: nothing filters on legs).
CREATE TABLE calls (
    linkedid                 text COLLATE "C" PRIMARY KEY,
    direction                text NOT NULL CHECK (direction IN ('inbound', 'outbound', 'internal')),
    caller                   text,
    caller_key               text,
    caller_name              text,
    called                   text,
    called_key               text,
    answered                 boolean NOT NULL,
    answered_by              text,
    missed_reason            text,
    talk_seconds             double precision NOT NULL,
    transferred_to           text,
    agents_rung_not_answered text[] NOT NULL DEFAULT '{}',
    recording                text,
    started_at               double precision NOT NULL,
    answered_at              double precision,
    ended_at                 double precision,
    outcome                  text NOT NULL CHECK (outcome IN ('answered', 'missed', 'failed')),
    ring_seconds             double precision NOT NULL DEFAULT 0,
    queue                    text,
    did                      text,
    hangup_cause             bigint,
    hangup_cause_txt         text,
    hung_up_by               text,
    recordings               text[] NOT NULL DEFAULT '{}',
    linkedids                text[] NOT NULL DEFAULT '{}',
    agents_answered          text[] NOT NULL DEFAULT '{}',
    complete                 boolean NOT NULL DEFAULT true,
    legs                     json NOT NULL DEFAULT '[]'
);
-- The journal's order is (started_at, linkedid): every index ends with both, so a page is read in order off
-- the index and the next page starts where the last one ended (keyset paging: no sort, no OFFSET).
CREATE INDEX calls_started ON calls (started_at, linkedid);
CREATE INDEX calls_caller_key ON calls (caller_key, started_at, linkedid);
CREATE INDEX calls_called_key ON calls (called_key, started_at, linkedid);
CREATE INDEX calls_direction ON calls (direction, started_at, linkedid);
CREATE INDEX calls_outcome ON calls (outcome, started_at, linkedid);

-- The agents of each call, one row per (call, agent), written with the call: "this agent's calls, newest
-- first" reads the primary key in order and stops at the page's end.
CREATE TABLE call_agents (
    agent             text COLLATE "C" NOT NULL,
    started_at        double precision NOT NULL,
    linkedid          text COLLATE "C" NOT NULL REFERENCES calls (linkedid) ON DELETE CASCADE,
    rung_not_answered boolean NOT NULL DEFAULT false,
    answered          boolean NOT NULL DEFAULT false,
    PRIMARY KEY (agent, started_at, linkedid)
);
CREATE INDEX call_agents_linkedid ON call_agents (linkedid);

-- An agent whose phone rang for a call and who did not answer it.
CREATE TABLE agent_misses (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    linkedid     text COLLATE "C" NOT NULL,
    agent        text COLLATE "C" NOT NULL,
    rang_at      double precision NOT NULL,
    ring_seconds double precision NOT NULL,
    reason       text NOT NULL,
    answered_by  text,
    caller       text,
    UNIQUE (linkedid, agent, rang_at)
);
CREATE INDEX agent_misses_agent ON agent_misses (agent, rang_at, id);
CREATE INDEX agent_misses_rang_at ON agent_misses (rang_at, id);

-- The missed-call register. An identity: an entry's number is shown to people and is never reused.
CREATE TABLE missed (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    linkedid        text COLLATE "C" NOT NULL UNIQUE,
    caller          text,
    caller_key      text,
    caller_name     text,
    called          text,
    queue           text,
    reason          text NOT NULL,
    missed_at       double precision NOT NULL,
    ring_seconds    double precision NOT NULL,
    agents_rung     text[] NOT NULL DEFAULT '{}',
    status          text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    closed_at       double precision,
    closed_by       text CHECK (closed_by IN ('callback', 'called_again', 'manual')),
    closed_linkedid text,
    comment         text,
    CHECK ((status = 'open') = (closed_by IS NULL))
);
-- The register's order is (missed_at, id); a number's entries (open ones for the card and the call-back rule).
CREATE INDEX missed_missed_at ON missed (missed_at, id);
CREATE INDEX missed_status ON missed (status, missed_at, id);
CREATE INDEX missed_by_key_status ON missed (caller_key, status, missed_at, id);
CREATE INDEX missed_by_key ON missed (caller_key, missed_at, id);

-- What happened to a missed entry, in order: the call-back history.
CREATE TABLE missed_history (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    entry_id bigint NOT NULL REFERENCES missed (id) ON DELETE CASCADE,
    at       double precision NOT NULL,
    action   text NOT NULL CHECK (action IN ('opened', 'closed', 'reopened', 'commented')),
    by       text,
    linkedid text,
    comment  text
);
CREATE INDEX missed_history_entry ON missed_history (entry_id, id);

-- Events of calls in progress, so a daemon killed mid-call can rebuild them; a call's rows are deleted in the
-- transaction that saves it. `headers` is a json list of [key, value], stored as written (order, duplicates).
CREATE TABLE live_events (
    seq         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    linkedid    text COLLATE "C" NOT NULL,
    headers     json NOT NULL,
    received_at double precision NOT NULL
);
CREATE INDEX live_events_linkedid ON live_events (linkedid);

-- Panel users; a name is taken once whatever its case (the unique index on lower(name)). Passwords and tokens
-- are stored hashed only (ui_bridge/auth.py).
CREATE TABLE users (
    name          text PRIMARY KEY,
    role          text NOT NULL CHECK (role IN ('agent', 'admin', 'qa')),
    extension     text,
    display_name  text,
    password_hash text,
    created_at    double precision NOT NULL,
    CHECK (role != 'agent' OR extension IS NOT NULL)
);
CREATE UNIQUE INDEX users_name_folded ON users (lower(name));

CREATE TABLE api_tokens (
    token_hash text PRIMARY KEY,
    user_name  text NOT NULL REFERENCES users (name) ON DELETE CASCADE ON UPDATE CASCADE,
    label      text,
    created_at double precision NOT NULL
);
CREATE INDEX api_tokens_user ON api_tokens (user_name);

-- Login sessions, in the store so a restart logs nobody out and the CLI revokes them in its own transaction.
CREATE TABLE sessions (
    token_hash   text PRIMARY KEY,
    user_name    text NOT NULL REFERENCES users (name) ON DELETE CASCADE ON UPDATE CASCADE,
    created_at   double precision NOT NULL,
    last_used_at double precision NOT NULL,
    expires_at   double precision NOT NULL,
    address      text
);
CREATE INDEX sessions_user ON sessions (user_name);
CREATE INDEX sessions_expires ON sessions (expires_at);

-- The client directory. Keys are computed in Python (cti.directory, cti.phones, cti.plates) so every store
-- matches the same way; phones_json / vehicles_json are the contact's card, written with it (one row read per
-- contact found), while contact_phones and vehicles stay the searchable truth.
CREATE TABLE contacts (
    id            bigint PRIMARY KEY,
    name          text NOT NULL,
    name_key      text COLLATE "C" NOT NULL,   -- folded: prefix search by surname (a range on this index)
    kind          text NOT NULL DEFAULT 'private' CHECK (kind IN ('private', 'corporate', 'partner', 'employee')),
    email         text,
    notes         text,
    external_id   text,
    created_at    double precision NOT NULL,
    updated_at    double precision NOT NULL,
    phones_json   json NOT NULL DEFAULT '[]',
    vehicles_json json NOT NULL DEFAULT '[]'
);
CREATE INDEX contacts_name_key ON contacts (name_key, id);
CREATE UNIQUE INDEX contacts_external_id ON contacts (external_id) WHERE external_id IS NOT NULL;

CREATE TABLE contact_phones (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- the order the phones were given
    contact_id bigint NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    number     text NOT NULL,
    number_key text NOT NULL,
    UNIQUE (contact_id, number_key)
);
CREATE INDEX contact_phones_key ON contact_phones (number_key);

CREATE TABLE vehicles (
    id           bigint PRIMARY KEY,
    contact_id   bigint REFERENCES contacts (id) ON DELETE SET NULL,
    make         text,
    model        text,
    year         integer,
    plate        text,
    plate_key    text,
    plate_base   text,
    plate_number text,
    vin          text
);
CREATE INDEX vehicles_contact ON vehicles (contact_id);
CREATE INDEX vehicles_plate_base ON vehicles (plate_base);
CREATE INDEX vehicles_plate_number ON vehicles (plate_number, id);
CREATE INDEX vehicles_vin ON vehicles (vin);

-- A call an agent attached to a contact by hand.
CREATE TABLE call_contacts (
    linkedid    text PRIMARY KEY,
    contact_id  bigint NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    attached_by text,
    attached_at double precision NOT NULL
);
CREATE INDEX call_contacts_contact ON call_contacts (contact_id);
