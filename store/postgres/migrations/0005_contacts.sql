-- 0005: the contact register (issue 13) and the `integration` role, as the SQLite store's 0010: one row per
-- registered contact (cti/contacts_register.py), `run_key` making a retried save find the first one's row; the
-- client's name, phone and kind as they were then; `route` the step ids, `answers` (step -> answer) and `times`
-- ([step, entered_at, left_at]) as JSON; each stage flag a time with who or what set it and a DMS's own id of the
-- event. The listing's order is (at, id); every filter has an index that starts with it and ends with that order
-- (a stage: a partial index of the contacts with that flag), so no filter reads the whole table.
CREATE TABLE contact_register (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_key             text COLLATE "C" NOT NULL UNIQUE,
    at                  double precision NOT NULL,
    finished_at         double precision NOT NULL,
    channel             text NOT NULL CHECK (channel IN ('phone', 'visit', 'internet', 'mobile', 'invitation')),
    pbx                 text COLLATE "C",
    agent               text,
    client_id           bigint REFERENCES contacts (id) ON DELETE SET NULL,
    vehicle_id          bigint REFERENCES vehicles (id) ON DELETE SET NULL,
    client_name         text,
    client_phone        text,
    client_kind         text CHECK (client_kind IN ('private', 'corporate', 'partner', 'employee')),
    client_new          boolean NOT NULL DEFAULT false,
    is_repeat           boolean NOT NULL DEFAULT false,
    reason              text,
    route               text[] NOT NULL DEFAULT '{}',
    answers             json NOT NULL DEFAULT '{}',
    times               json NOT NULL DEFAULT '[]',
    employee            text,
    employee_name       text,
    employee_extension  text,
    transfer_answered   boolean,
    workshop            text,
    earlier_call        text,
    earlier_contact     bigint,
    script              text NOT NULL,
    version             text NOT NULL,
    label               text,
    note                text,
    saved_at            double precision NOT NULL,
    request_at          double precision,
    request_by          text,
    request_external_id text,
    booking_at          double precision,
    booking_by          text,
    booking_external_id text,
    visit_at            double precision,
    visit_by            text,
    visit_external_id   text
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
    contact_id bigint NOT NULL REFERENCES contact_register (id) ON DELETE CASCADE,
    pbx        text COLLATE "C" NOT NULL,
    linkedid   text COLLATE "C" NOT NULL,
    PRIMARY KEY (contact_id, pbx, linkedid)
);
CREATE INDEX contact_calls_call ON contact_calls (linkedid, pbx);

-- The `integration` role: a DMS's user, which authenticates with an API token and calls the integration routes only.
ALTER TABLE users DROP CONSTRAINT users_role_check;
ALTER TABLE users ADD CONSTRAINT users_role_check CHECK (role IN ('agent', 'admin', 'qa', 'integration'));
