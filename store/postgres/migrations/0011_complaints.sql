-- 0011: complaints and claims (issue 15), as the SQLite store's 0016: the complaints with their calls, action plan,
-- history, stage tasks and attachments; the durable e-mail outbox; users' e-mail addresses. Times are epoch seconds.

-- The last number given per year (Ж-2026-0001), bumped in the registering transaction (the row lock serialises two
-- nodes registering at once; a registration rolled back gives its number back).
CREATE TABLE complaint_numbers (
    year bigint PRIMARY KEY,
    last_number bigint NOT NULL
);

-- A complaint as it stands; `fields` the stage fields (json object), `revision` grows with every change,
-- `search` the text the list's text filter matches (written by the store, store/complaints.py).
CREATE TABLE complaints (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    number              text NOT NULL UNIQUE,
    type                text NOT NULL,
    kind                text NOT NULL CHECK (kind IN ('client', 'supplier')),
    stage               text NOT NULL CHECK (stage IN ('registration', 'review', 'justification',
                                                       'corrective_action', 'satisfaction_check', 'result', 'closed')),
    status              text NOT NULL CHECK (status IN ('registered', 'in_progress', 'satisfied', 'not_satisfied')),
    source              text NOT NULL CHECK (source IN ('call', 'panel', 'api')),
    responsible         text NOT NULL,
    assignee            text NOT NULL,
    stage_entered_at    double precision NOT NULL,
    stage_due_at        double precision,
    created_at          double precision NOT NULL,
    created_by          text NOT NULL,
    updated_at          double precision NOT NULL,
    revision            bigint NOT NULL DEFAULT 1,
    client_name         text,
    client_phone        text,
    client_email        text,
    contact_id          bigint,
    car                 text,
    plate               text,
    subject_kind        text,
    subject             text,
    comment             text,
    justified           boolean,
    result              text CHECK (result IN ('satisfied', 'not_satisfied')),
    fields              json NOT NULL DEFAULT '{}',
    register_contact_id bigint,
    closed_at           double precision,
    idempotency_key     text UNIQUE,
    search              text COLLATE "C" NOT NULL DEFAULT ''
);
CREATE INDEX complaints_created ON complaints (created_at, id);
CREATE INDEX complaints_status ON complaints (status, created_at);
CREATE INDEX complaints_stage ON complaints (stage, created_at);
CREATE INDEX complaints_type ON complaints (type, created_at);
CREATE INDEX complaints_responsible ON complaints (lower(responsible), created_at);
CREATE INDEX complaints_assignee ON complaints (lower(assignee), created_at);
CREATE INDEX complaints_due ON complaints (stage_due_at) WHERE stage <> 'closed';

CREATE TABLE complaint_calls (
    complaint_id bigint NOT NULL REFERENCES complaints (id) ON DELETE CASCADE,
    position     bigint NOT NULL,
    pbx          text COLLATE "C" NOT NULL,
    linkedid     text COLLATE "C" NOT NULL,
    PRIMARY KEY (complaint_id, position)
);
CREATE INDEX complaint_calls_call ON complaint_calls (pbx, linkedid);

CREATE TABLE complaint_actions (
    complaint_id bigint NOT NULL REFERENCES complaints (id) ON DELETE CASCADE,
    position     bigint NOT NULL,
    due          text NOT NULL,
    what         text NOT NULL,
    who          text NOT NULL,
    result       text NOT NULL DEFAULT '',
    effort_hours double precision,
    PRIMARY KEY (complaint_id, position)
);

CREATE TABLE complaint_history (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    complaint_id bigint NOT NULL REFERENCES complaints (id) ON DELETE CASCADE,
    at           double precision NOT NULL,
    author       text NOT NULL,
    action       text NOT NULL,
    details      json NOT NULL DEFAULT '{}'
);
CREATE INDEX complaint_history_complaint ON complaint_history (complaint_id, id);

CREATE TABLE complaint_tasks (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    complaint_id bigint NOT NULL REFERENCES complaints (id) ON DELETE CASCADE,
    stage        text NOT NULL CHECK (stage IN ('registration', 'review', 'justification',
                                                'corrective_action', 'satisfaction_check', 'result', 'closed')),
    assignee     text NOT NULL,
    created_at   double precision NOT NULL,
    due_at       double precision,
    state        text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'done', 'cancelled')),
    done_at      double precision,
    escalated_at double precision
);
CREATE INDEX complaint_tasks_complaint ON complaint_tasks (complaint_id, state);
CREATE INDEX complaint_tasks_assignee ON complaint_tasks (lower(assignee), state, due_at);
CREATE INDEX complaint_tasks_to_escalate ON complaint_tasks (due_at) WHERE state = 'open' AND escalated_at IS NULL;

CREATE TABLE complaint_attachments (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    complaint_id bigint NOT NULL REFERENCES complaints (id) ON DELETE CASCADE,
    file_name    text NOT NULL,
    content_type text NOT NULL,
    size         bigint NOT NULL CHECK (size >= 0),
    stored_as    text COLLATE "C" NOT NULL UNIQUE,
    author       text NOT NULL,
    at           double precision NOT NULL
);
CREATE INDEX complaint_attachments_complaint ON complaint_attachments (complaint_id, id);

-- The durable e-mail outbox: taken `FOR UPDATE SKIP LOCKED` with a lease (`next_try_at` moved to its end), so two
-- nodes never send one mail at once.
CREATE TABLE mail_outbox (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    recipients  json NOT NULL DEFAULT '[]',
    subject     text NOT NULL,
    body        text NOT NULL,
    about       text,
    created_at  double precision NOT NULL,
    attempts    bigint NOT NULL DEFAULT 0,
    next_try_at double precision NOT NULL,
    sent_at     double precision,
    failed_at   double precision,
    last_error  text
);
CREATE INDEX mail_outbox_due ON mail_outbox (next_try_at) WHERE sent_at IS NULL AND failed_at IS NULL;
CREATE INDEX mail_outbox_created ON mail_outbox (created_at, id);

ALTER TABLE users ADD COLUMN email text;
