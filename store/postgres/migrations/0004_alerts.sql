-- 0004: the supervisor's alerts (issue 12), as the SQLite store's 0009: a history a supervisor can read after a
-- restart. One row per alert: raised once for a condition (`key`, cti/alerts.py), maybe acknowledged, resolved
-- (never deleted) when the condition ended; a condition that comes back is a new row. At most one alert per PBX
-- and key is unresolved at a time (the partial unique index): two nodes raising the same condition during a
-- takeover make one row. `figures`: the message's figures when raised; `since`: when the condition began.
CREATE TABLE alerts (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    pbx             text COLLATE "C" NOT NULL,
    key             text COLLATE "C" NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('long_wait', 'service_level', 'paused', 'missed')),
    subject         text NOT NULL,
    since           double precision,
    figures         json NOT NULL DEFAULT '{}',
    raised_at       double precision NOT NULL,
    acknowledged_at double precision,
    acknowledged_by text,
    resolved_at     double precision
);
CREATE UNIQUE INDEX alerts_active ON alerts (pbx, key) WHERE resolved_at IS NULL;
CREATE INDEX alerts_pbx ON alerts (pbx, id);
