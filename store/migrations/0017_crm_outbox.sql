-- 0017: the durable CRM outbox (issue 16, cti/crm, store/crm_outbox.py): each request to a CRM written with its
-- call's planner state before it is sent, sent in order per call by one taker at a time, retried, given up; the
-- values a connector keeps. Times are epoch seconds; JSON is text (objects, keys sorted).

-- A request to a CRM. `call`: the outbox's name of the call ("pbx:linkedid", cti.crm.call_key); `seq`: its place
-- in the call's sequence (1, 2, ...), sent in that order. Pending while neither `sent_at` nor `failed_at` (given
-- up) is set; due once `next_try_at` has passed; taking it moves `next_try_at` to the end of the taker's lease and
-- counts the try in `attempts`. `head` is 1 on one row per call: its pending request of the lowest `seq`, the only
-- one `take_crm` may hand out (kept by the store in the transaction that changes the call's pending set), so the
-- due requests are one index range, never the calls' later requests waiting behind one in back-off.
-- `last_error` / `error_at`: the last failed try's error and time; `retried_at`: when an admin put it back after it
-- was given up (its retry period starts again there); `answer`: what the CRM's answer gave.
CREATE TABLE crm_outbox (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    crm         TEXT NOT NULL,
    call        TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    payload     TEXT NOT NULL DEFAULT '{}',
    created_at  REAL NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    next_try_at REAL NOT NULL,
    sent_at     REAL,
    failed_at   REAL,
    last_error  TEXT,
    error_at    REAL,
    retried_at  REAL,
    answer      TEXT NOT NULL DEFAULT '{}',
    head        INTEGER NOT NULL DEFAULT 0 CHECK (head IN (0, 1))
);
-- A call's sequence (also the next head, and a call's items whatever the CRM); two requests never share a place.
CREATE UNIQUE INDEX crm_outbox_call ON crm_outbox (call, crm, seq);
-- take_crm: the heads of one CRM in the order they fall due.
CREATE INDEX crm_outbox_due ON crm_outbox (crm, next_try_at, id) WHERE head = 1;
-- crm_status and the listings by state: pending (count, oldest), given up, sent; the last error of what is unsent.
CREATE INDEX crm_outbox_pending ON crm_outbox (crm, id, created_at) WHERE sent_at IS NULL AND failed_at IS NULL;
CREATE INDEX crm_outbox_failed ON crm_outbox (crm, id) WHERE failed_at IS NOT NULL;
CREATE INDEX crm_outbox_sent ON crm_outbox (crm, id) WHERE sent_at IS NOT NULL;
CREATE INDEX crm_outbox_errors ON crm_outbox (crm, error_at) WHERE sent_at IS NULL AND error_at IS NOT NULL;
-- A CRM's items in order (the 1C pull feed, the admin's list of one CRM).
CREATE INDEX crm_outbox_crm ON crm_outbox (crm, id);

-- A call as one CRM's planner sees it: its `state` (JSON object, NULL: none kept yet), the `answers` of its sent
-- requests merged (what {"$remote": name} reads), `last_seq` given to its requests so far.
CREATE TABLE crm_calls (
    crm        TEXT NOT NULL,
    call       TEXT NOT NULL,
    state      TEXT,
    answers    TEXT NOT NULL DEFAULT '{}',
    last_seq   INTEGER NOT NULL DEFAULT 0,
    updated_at REAL NOT NULL,
    PRIMARY KEY (crm, call)
) WITHOUT ROWID;

-- What a connector keeps by name (tokens, the app's settings, a delivery already handled): a JSON object.
CREATE TABLE crm_values (
    crm   TEXT NOT NULL,
    name  TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (crm, name)
) WITHOUT ROWID;
