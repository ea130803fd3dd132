-- 0016: complaints and claims (issue 15, cti/complaints.py): the complaints with their calls, action plan, history,
-- stage tasks and attachments; the durable e-mail outbox; users' e-mail addresses. Times are epoch seconds; people
-- are panel users by name (compared case-insensitively, as the users table does).

-- The numbers people quote (Ж-2026-0001): the last one given per year (the year in the site's zone when the store
-- was told one, report_zone, else UTC). One row per year, bumped in the registering transaction, so two
-- registrations never take one number and a registration rolled back gives its number back.
CREATE TABLE complaint_numbers (
    year INTEGER PRIMARY KEY,
    last_number INTEGER NOT NULL
);

-- A complaint as it stands (store/complaints.py). `fields`: the JSON object of the stage fields (description, cause,
-- department, decision, ...: cti/complaint_rules.py names them); `revision` grows with every change (a change made
-- from an older revision is refused); `idempotency_key`: the API request that filed it (a retry finds it);
-- `search`: the text the list's text filter matches (the number, the client, phone, e-mail, car, plate, subject,
-- comment and fields, case-folded, the plate and the phone also in their keys), written by the store with the row.
CREATE TABLE complaints (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    number              TEXT NOT NULL UNIQUE,
    type                TEXT NOT NULL,
    kind                TEXT NOT NULL CHECK (kind IN ('client', 'supplier')),
    stage               TEXT NOT NULL CHECK (stage IN ('registration', 'review', 'justification',
                                                       'corrective_action', 'satisfaction_check', 'result', 'closed')),
    status              TEXT NOT NULL CHECK (status IN ('registered', 'in_progress', 'satisfied', 'not_satisfied')),
    source              TEXT NOT NULL CHECK (source IN ('call', 'panel', 'api')),
    responsible         TEXT NOT NULL,
    assignee            TEXT NOT NULL,
    stage_entered_at    REAL NOT NULL,
    stage_due_at        REAL,
    created_at          REAL NOT NULL,
    created_by          TEXT NOT NULL,
    updated_at          REAL NOT NULL,
    revision            INTEGER NOT NULL DEFAULT 1,
    client_name         TEXT,
    client_phone        TEXT,
    client_email        TEXT,
    contact_id          INTEGER,
    car                 TEXT,
    plate               TEXT,
    subject_kind        TEXT,
    subject             TEXT,
    comment             TEXT,
    justified           INTEGER CHECK (justified IN (0, 1)),
    result              TEXT CHECK (result IN ('satisfied', 'not_satisfied')),
    fields              TEXT NOT NULL DEFAULT '{}',
    register_contact_id INTEGER,
    closed_at           REAL,
    idempotency_key     TEXT UNIQUE,
    search              TEXT NOT NULL DEFAULT ''
);
-- The list, newest first, and its filters; the open ones by their stage's deadline (the overdue filter).
CREATE INDEX complaints_created ON complaints (created_at, id);
CREATE INDEX complaints_status ON complaints (status, created_at);
CREATE INDEX complaints_stage ON complaints (stage, created_at);
CREATE INDEX complaints_type ON complaints (type, created_at);
CREATE INDEX complaints_responsible ON complaints (lower(responsible), created_at);
CREATE INDEX complaints_assignee ON complaints (lower(assignee), created_at);
CREATE INDEX complaints_due ON complaints (stage_due_at) WHERE stage != 'closed';

-- The calls a complaint is about (the journal's key), in the order they were linked.
CREATE TABLE complaint_calls (
    complaint_id INTEGER NOT NULL REFERENCES complaints (id) ON DELETE CASCADE,
    position     INTEGER NOT NULL,
    pbx          TEXT NOT NULL,
    linkedid     TEXT NOT NULL,
    PRIMARY KEY (complaint_id, position)
) WITHOUT ROWID;
CREATE INDEX complaint_calls_call ON complaint_calls (pbx, linkedid);

-- The action plan's rows: when (an ISO date as typed), what, who, the result, the effort in hours.
CREATE TABLE complaint_actions (
    complaint_id INTEGER NOT NULL REFERENCES complaints (id) ON DELETE CASCADE,
    position     INTEGER NOT NULL,
    due          TEXT NOT NULL,
    what         TEXT NOT NULL,
    who          TEXT NOT NULL,
    result       TEXT NOT NULL DEFAULT '',
    effort_hours REAL,
    PRIMARY KEY (complaint_id, position)
) WITHOUT ROWID;

-- Every change of a complaint: who (`author`), when, what (`action`) and its details (a JSON object: old and new
-- values, a reassignment's reason, a question's text). Read oldest first.
CREATE TABLE complaint_history (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    complaint_id INTEGER NOT NULL REFERENCES complaints (id) ON DELETE CASCADE,
    at           REAL NOT NULL,
    author       TEXT NOT NULL,
    action       TEXT NOT NULL,
    details      TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX complaint_history_complaint ON complaint_history (complaint_id, id);

-- The work a stage asks of its assignee, with its deadline. A complaint has at most one open task: a change that
-- opens one closes the others in its transaction. `escalated_at`: set once, by the node that escalated it.
CREATE TABLE complaint_tasks (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    complaint_id INTEGER NOT NULL REFERENCES complaints (id) ON DELETE CASCADE,
    stage        TEXT NOT NULL CHECK (stage IN ('registration', 'review', 'justification',
                                                'corrective_action', 'satisfaction_check', 'result', 'closed')),
    assignee     TEXT NOT NULL,
    created_at   REAL NOT NULL,
    due_at       REAL,
    state        TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'done', 'cancelled')),
    done_at      REAL,
    escalated_at REAL
);
CREATE INDEX complaint_tasks_complaint ON complaint_tasks (complaint_id, state);
CREATE INDEX complaint_tasks_assignee ON complaint_tasks (lower(assignee), state, due_at);
CREATE INDEX complaint_tasks_to_escalate ON complaint_tasks (due_at) WHERE state = 'open' AND escalated_at IS NULL;

-- Files uploaded to a complaint: the client's name (cleaned, shown as text only), its type and size, and
-- `stored_as`, the server's own name for it in the attachments folder (never a name from the client).
CREATE TABLE complaint_attachments (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    complaint_id INTEGER NOT NULL REFERENCES complaints (id) ON DELETE CASCADE,
    file_name    TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size         INTEGER NOT NULL CHECK (size >= 0),
    stored_as    TEXT NOT NULL UNIQUE,
    author       TEXT NOT NULL,
    at           REAL NOT NULL
);
CREATE INDEX complaint_attachments_complaint ON complaint_attachments (complaint_id, id);

-- The durable e-mail outbox (store/outbox.py): written in the transaction of the change it tells of, sent by the
-- mailer (companion/mailer.py). `recipients`: a JSON list of addresses. A mail is pending while neither `sent_at`
-- nor `failed_at` (given up) is set; it is due once `next_try_at` has passed; taking it moves `next_try_at` to the
-- end of the taker's lease, so two nodes never send it at once. `attempts`: the tries made.
CREATE TABLE mail_outbox (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    recipients  TEXT NOT NULL DEFAULT '[]',
    subject     TEXT NOT NULL,
    body        TEXT NOT NULL,
    about       TEXT,
    created_at  REAL NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    next_try_at REAL NOT NULL,
    sent_at     REAL,
    failed_at   REAL,
    last_error  TEXT
);
CREATE INDEX mail_outbox_due ON mail_outbox (next_try_at) WHERE sent_at IS NULL AND failed_at IS NULL;
CREATE INDEX mail_outbox_created ON mail_outbox (created_at, id);

-- Users' e-mail addresses (where the complaints' notifications go); none: no e-mail.
ALTER TABLE users ADD COLUMN email TEXT;
