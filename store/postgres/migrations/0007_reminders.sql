-- 0007: call-back reminders (issue 13) and the `employee` role, as the SQLite store's 0012: one row per reminder
-- (who is to call back whom, when, what it came from, how it was closed), and the two times the ticker sets once
-- each, on one node (`notified_at`: pushed as due; `escalated_at`: overdue, to the admins).
CREATE TABLE reminders (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    pbx             text COLLATE "C" NOT NULL,
    employee        text COLLATE "C" NOT NULL,
    employee_name   text NOT NULL,
    extension       text COLLATE "C",
    user_name       text,
    number          text COLLATE "C" NOT NULL,
    number_key      text COLLATE "C",
    contact_id      bigint,
    client_name     text,
    card            json,
    note            text,
    due_at          double precision NOT NULL,
    created_at      double precision NOT NULL,
    created_by      text,
    run_id          bigint,
    linkedid        text COLLATE "C",
    status          text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'done', 'cancelled')),
    closed_how      text CHECK (closed_how IN ('call', 'hand')),
    closed_at       double precision,
    closed_by       text,
    closed_linkedid text COLLATE "C",
    comment         text,
    notified_at     double precision,
    escalated_at    double precision
);
CREATE UNIQUE INDEX reminders_run ON reminders (run_id, employee, due_at) WHERE run_id IS NOT NULL;
CREATE INDEX reminders_open_due ON reminders (due_at, id) WHERE status = 'open';
CREATE INDEX reminders_to_push ON reminders (due_at) WHERE status = 'open' AND notified_at IS NULL;
CREATE INDEX reminders_to_escalate ON reminders (due_at) WHERE status = 'open' AND escalated_at IS NULL;
CREATE INDEX reminders_extension ON reminders (pbx, extension, status, due_at);
CREATE INDEX reminders_user ON reminders (lower(user_name), status, due_at) WHERE user_name IS NOT NULL;
CREATE INDEX reminders_number ON reminders (pbx, number_key) WHERE status = 'open';

-- The `employee` role: a master who logs in to see their reminders only; like an agent, always with an extension.
ALTER TABLE users DROP CONSTRAINT users_role_check;
ALTER TABLE users ADD CONSTRAINT users_role_check
    CHECK (role IN ('agent', 'admin', 'qa', 'integration', 'employee'));
ALTER TABLE users ADD CONSTRAINT users_employee_extension CHECK (role != 'employee' OR extension IS NOT NULL);
