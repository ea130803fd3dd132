-- 0009: the supervisor's alerts (issue 12), a history a supervisor can read after a restart.
--
-- One row per alert: raised once for a condition (`key`: `long_wait:<pbx>:<linkedid>`, `service_level:<pbx>:<queue>`,
-- `paused:<pbx>:<extension>`, `missed:<pbx>:<entry id>`; cti/alerts.py), maybe acknowledged by a supervisor, and
-- resolved (never deleted) when the condition ended. A condition that comes back after its alert was resolved is a
-- new row. At most one alert per PBX and key is unresolved at a time (the partial unique index): a second raise of
-- the same condition finds the first. `figures` is the JSON object of the message's figures when it was raised;
-- `since` is when the condition began (NULL for a service level: a figure over a window). Times are epoch seconds.
CREATE TABLE alerts (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    pbx             TEXT NOT NULL,
    key             TEXT NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('long_wait', 'service_level', 'paused', 'missed')),
    subject         TEXT NOT NULL,
    since           REAL,
    figures         TEXT NOT NULL DEFAULT '{}',
    raised_at       REAL NOT NULL,
    acknowledged_at REAL,
    acknowledged_by TEXT,
    resolved_at     REAL
);
CREATE UNIQUE INDEX alerts_active ON alerts (pbx, key) WHERE resolved_at IS NULL;
CREATE INDEX alerts_pbx ON alerts (pbx, id);
