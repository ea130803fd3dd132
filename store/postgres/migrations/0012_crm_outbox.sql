-- 0012: the durable CRM outbox (issue 16, cti/crm, store/crm_outbox.py), as SQLite's 0017: each request to a CRM
-- written with its call's planner state before it is sent, sent in order per call, retried, given up; the values a
-- connector keeps. Times are epoch seconds; JSON is text (objects, keys sorted: a kept value is compared as text by
-- put_crm_value's compare-and-set).

-- A request to a CRM (the columns: SQLite's 0017). Taken `FOR UPDATE SKIP LOCKED` with a lease, so two nodes never
-- take one request; `head` (1 on a call's pending request of the lowest `seq`) is kept under the lock of the call's
-- crm_calls row, so two nodes never hand out two requests of one call.
CREATE TABLE crm_outbox (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    crm         text NOT NULL,
    call        text NOT NULL,
    seq         bigint NOT NULL,
    kind        text NOT NULL,
    payload     text NOT NULL DEFAULT '{}',
    created_at  double precision NOT NULL,
    attempts    bigint NOT NULL DEFAULT 0,
    next_try_at double precision NOT NULL,
    sent_at     double precision,
    failed_at   double precision,
    last_error  text,
    error_at    double precision,
    retried_at  double precision,
    answer      text NOT NULL DEFAULT '{}',
    head        smallint NOT NULL DEFAULT 0 CHECK (head IN (0, 1))
);
CREATE UNIQUE INDEX crm_outbox_call ON crm_outbox (call, crm, seq);
CREATE INDEX crm_outbox_due ON crm_outbox (crm, next_try_at, id) WHERE head = 1;
CREATE INDEX crm_outbox_pending ON crm_outbox (crm, id, created_at) WHERE sent_at IS NULL AND failed_at IS NULL;
CREATE INDEX crm_outbox_failed ON crm_outbox (crm, id) WHERE failed_at IS NOT NULL;
CREATE INDEX crm_outbox_sent ON crm_outbox (crm, id) WHERE sent_at IS NOT NULL;
CREATE INDEX crm_outbox_errors ON crm_outbox (crm, error_at) WHERE sent_at IS NULL AND error_at IS NOT NULL;
CREATE INDEX crm_outbox_crm ON crm_outbox (crm, id);

CREATE TABLE crm_calls (
    crm        text NOT NULL,
    call       text NOT NULL,
    state      text,
    answers    text NOT NULL DEFAULT '{}',
    last_seq   bigint NOT NULL DEFAULT 0,
    updated_at double precision NOT NULL,
    PRIMARY KEY (crm, call)
);

CREATE TABLE crm_values (
    crm   text NOT NULL,
    name  text NOT NULL,
    value text NOT NULL,
    PRIMARY KEY (crm, name)
);
