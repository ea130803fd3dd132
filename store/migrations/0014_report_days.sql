-- 0014: the reports' day counts (issue 13: a report over a year in under 1 s). A year is a million answered calls
-- and a million and a half contacts, and SQLite groups rows by sorting them: 1-3.5 s a report over a year, however
-- good the index (docs/benchmarks.md, "reports"). So the store keeps the counts the reports read, per local day of
-- the site's zone, in these tables, and a year's report reads 365 days of counts instead of its rows.
--
-- Kept by triggers, so they change in the same transaction as the rows they count, whichever code writes them (the
-- staged writer, the register by hand, the contact register, the DMS's stages, a store copy): they cannot drift.
-- A count is never written by hand; a key column a row leaves NULL is '' here (a primary key needs a value).
--
-- The day is the site's: `report_zone` holds the zone's spans of constant UTC offset (1970-2100, cti/reports.py's
-- offset_spans), written with the counts rebuilt from the rows when the store is told another zone
-- (store/report_days.py). Empty (a store never told its zone, as this migration leaves it): the triggers count
-- nothing and the reports count rows.
CREATE TABLE report_zone (
    since      REAL    NOT NULL PRIMARY KEY,
    until      REAL    NOT NULL,
    utc_offset INTEGER NOT NULL,
    zone       TEXT    NOT NULL
) WITHOUT ROWID;

-- The "PBX vs registered" report: each day's answered inbound calls by PBX and the agent who answered first, and how
-- many of them a contact is linked to.
CREATE TABLE report_answered (
    day        INTEGER NOT NULL,
    pbx        TEXT    NOT NULL,
    agent      TEXT    NOT NULL,
    answered   INTEGER NOT NULL,
    registered INTEGER NOT NULL,
    PRIMARY KEY (day, pbx, agent)
) WITHOUT ROWID;

-- The contacts by the day they began: per agent (the phone contacts of "PBX vs registered", the funnel per agent),
-- per employee (the funnel per employee) and per channel, client type and reason (the contact statistics); each with
-- primary vs repeat, and the funnel's stages reached.
CREATE TABLE report_contact_agents (
    day       INTEGER NOT NULL,
    pbx       TEXT    NOT NULL,
    agent     TEXT    NOT NULL,
    is_repeat INTEGER NOT NULL,
    contacts  INTEGER NOT NULL,
    phone     INTEGER NOT NULL,
    request   INTEGER NOT NULL,
    booking   INTEGER NOT NULL,
    visit     INTEGER NOT NULL,
    PRIMARY KEY (day, pbx, agent, is_repeat)
) WITHOUT ROWID;
CREATE TABLE report_contact_employees (
    day       INTEGER NOT NULL,
    pbx       TEXT    NOT NULL,
    employee  TEXT    NOT NULL,
    is_repeat INTEGER NOT NULL,
    contacts  INTEGER NOT NULL,
    request   INTEGER NOT NULL,
    booking   INTEGER NOT NULL,
    visit     INTEGER NOT NULL,
    PRIMARY KEY (day, pbx, employee, is_repeat)
) WITHOUT ROWID;
CREATE TABLE report_contact_kinds (
    day       INTEGER NOT NULL,
    pbx       TEXT    NOT NULL,
    dimension TEXT    NOT NULL CHECK (dimension IN ('channel', 'client_kind', 'reason')),
    value     TEXT    NOT NULL,
    is_repeat INTEGER NOT NULL,
    n         INTEGER NOT NULL,
    PRIMARY KEY (day, pbx, dimension, value, is_repeat)
) WITHOUT ROWID;

-- The missed calls report: the register's entries by the day they were missed, reason and how they were closed
-- ('' while open); the agents' misses by the day their phone rang, agent and reason.
CREATE TABLE report_missed (
    day       INTEGER NOT NULL,
    pbx       TEXT    NOT NULL,
    reason    TEXT    NOT NULL,
    closed_by TEXT    NOT NULL,
    n         INTEGER NOT NULL,
    PRIMARY KEY (day, pbx, reason, closed_by)
) WITHOUT ROWID;
CREATE TABLE report_agent_misses (
    day    INTEGER NOT NULL,
    pbx    TEXT    NOT NULL,
    agent  TEXT    NOT NULL,
    reason TEXT    NOT NULL,
    n      INTEGER NOT NULL,
    PRIMARY KEY (day, pbx, agent, reason)
) WITHOUT ROWID;

-- The triggers: a row counted (+) when written, uncounted (-) when deleted, both when updated (an upsert of a call
-- saved again, a register entry closed, a contact's stage set). A call's "registered" changes with its first link
-- to a contact and its last.
CREATE TRIGGER report_calls_insert AFTER INSERT ON calls
WHEN NEW.direction = 'inbound' AND NEW.outcome = 'answered'
BEGIN
    INSERT INTO report_answered (day, pbx, agent, answered, registered)
    SELECT CAST((NEW.started_at + z.utc_offset) / 86400 AS INTEGER), NEW.pbx, coalesce(NEW.answered_by, ''), 1, EXISTS (SELECT 1 FROM contact_calls cc WHERE cc.linkedid = NEW.linkedid AND cc.pbx = NEW.pbx)
    FROM report_zone z WHERE z.since = (SELECT max(since) FROM report_zone WHERE since <= NEW.started_at) AND NEW.started_at < z.until
    ON CONFLICT (day, pbx, agent) DO UPDATE SET answered = answered + excluded.answered, registered = registered + excluded.registered;
END;

CREATE TRIGGER report_calls_update_old AFTER UPDATE ON calls
WHEN OLD.direction = 'inbound' AND OLD.outcome = 'answered'
BEGIN
    INSERT INTO report_answered (day, pbx, agent, answered, registered)
    SELECT CAST((OLD.started_at + z.utc_offset) / 86400 AS INTEGER), OLD.pbx, coalesce(OLD.answered_by, ''), -(1), -(EXISTS (SELECT 1 FROM contact_calls cc WHERE cc.linkedid = OLD.linkedid AND cc.pbx = OLD.pbx))
    FROM report_zone z WHERE z.since = (SELECT max(since) FROM report_zone WHERE since <= OLD.started_at) AND OLD.started_at < z.until
    ON CONFLICT (day, pbx, agent) DO UPDATE SET answered = answered + excluded.answered, registered = registered + excluded.registered;
END;

CREATE TRIGGER report_calls_update_new AFTER UPDATE ON calls
WHEN NEW.direction = 'inbound' AND NEW.outcome = 'answered'
BEGIN
    INSERT INTO report_answered (day, pbx, agent, answered, registered)
    SELECT CAST((NEW.started_at + z.utc_offset) / 86400 AS INTEGER), NEW.pbx, coalesce(NEW.answered_by, ''), 1, EXISTS (SELECT 1 FROM contact_calls cc WHERE cc.linkedid = NEW.linkedid AND cc.pbx = NEW.pbx)
    FROM report_zone z WHERE z.since = (SELECT max(since) FROM report_zone WHERE since <= NEW.started_at) AND NEW.started_at < z.until
    ON CONFLICT (day, pbx, agent) DO UPDATE SET answered = answered + excluded.answered, registered = registered + excluded.registered;
END;

CREATE TRIGGER report_calls_delete AFTER DELETE ON calls
WHEN OLD.direction = 'inbound' AND OLD.outcome = 'answered'
BEGIN
    INSERT INTO report_answered (day, pbx, agent, answered, registered)
    SELECT CAST((OLD.started_at + z.utc_offset) / 86400 AS INTEGER), OLD.pbx, coalesce(OLD.answered_by, ''), -(1), -(EXISTS (SELECT 1 FROM contact_calls cc WHERE cc.linkedid = OLD.linkedid AND cc.pbx = OLD.pbx))
    FROM report_zone z WHERE z.since = (SELECT max(since) FROM report_zone WHERE since <= OLD.started_at) AND OLD.started_at < z.until
    ON CONFLICT (day, pbx, agent) DO UPDATE SET answered = answered + excluded.answered, registered = registered + excluded.registered;
END;

CREATE TRIGGER report_links_insert AFTER INSERT ON contact_calls
BEGIN
    UPDATE report_answered SET registered = registered + 1
    WHERE NOT EXISTS (SELECT 1 FROM contact_calls o WHERE o.linkedid = NEW.linkedid AND o.pbx = NEW.pbx AND o.contact_id != NEW.contact_id) AND (day, pbx, agent) IN (
        SELECT CAST((c.started_at + z.utc_offset) / 86400 AS INTEGER), c.pbx, coalesce(c.answered_by, '')
        FROM calls c JOIN report_zone z ON z.since = (SELECT max(since) FROM report_zone WHERE since <= c.started_at) AND c.started_at < z.until
        WHERE c.linkedid = NEW.linkedid AND c.pbx = NEW.pbx AND c.direction = 'inbound' AND c.outcome = 'answered');
END;

CREATE TRIGGER report_links_delete AFTER DELETE ON contact_calls
BEGIN
    UPDATE report_answered SET registered = registered - 1
    WHERE NOT EXISTS (SELECT 1 FROM contact_calls o WHERE o.linkedid = OLD.linkedid AND o.pbx = OLD.pbx AND o.contact_id != OLD.contact_id) AND (day, pbx, agent) IN (
        SELECT CAST((c.started_at + z.utc_offset) / 86400 AS INTEGER), c.pbx, coalesce(c.answered_by, '')
        FROM calls c JOIN report_zone z ON z.since = (SELECT max(since) FROM report_zone WHERE since <= c.started_at) AND c.started_at < z.until
        WHERE c.linkedid = OLD.linkedid AND c.pbx = OLD.pbx AND c.direction = 'inbound' AND c.outcome = 'answered');
END;

CREATE TRIGGER report_contacts_insert AFTER INSERT ON contact_register
BEGIN
    INSERT INTO report_contact_agents (day, pbx, agent, is_repeat, contacts, request, booking, visit, phone)
    SELECT CAST((NEW.at + z.utc_offset) / 86400 AS INTEGER), coalesce(NEW.pbx, ''), coalesce(NEW.agent, ''), NEW.is_repeat, 1, (NEW.request_at IS NOT NULL OR NEW.booking_at IS NOT NULL OR NEW.visit_at IS NOT NULL), (NEW.booking_at IS NOT NULL OR NEW.visit_at IS NOT NULL), (NEW.visit_at IS NOT NULL), (NEW.channel = 'phone')
    FROM report_zone z WHERE z.since = (SELECT max(since) FROM report_zone WHERE since <= NEW.at) AND NEW.at < z.until
    ON CONFLICT (day, pbx, agent, is_repeat) DO UPDATE SET contacts = contacts + excluded.contacts, request = request + excluded.request, booking = booking + excluded.booking, visit = visit + excluded.visit, phone = phone + excluded.phone;
    INSERT INTO report_contact_employees (day, pbx, employee, is_repeat, contacts, request, booking, visit)
    SELECT CAST((NEW.at + z.utc_offset) / 86400 AS INTEGER), coalesce(NEW.pbx, ''), coalesce(NEW.employee, ''), NEW.is_repeat, 1, (NEW.request_at IS NOT NULL OR NEW.booking_at IS NOT NULL OR NEW.visit_at IS NOT NULL), (NEW.booking_at IS NOT NULL OR NEW.visit_at IS NOT NULL), (NEW.visit_at IS NOT NULL)
    FROM report_zone z WHERE z.since = (SELECT max(since) FROM report_zone WHERE since <= NEW.at) AND NEW.at < z.until
    ON CONFLICT (day, pbx, employee, is_repeat) DO UPDATE SET contacts = contacts + excluded.contacts, request = request + excluded.request, booking = booking + excluded.booking, visit = visit + excluded.visit;
    INSERT INTO report_contact_kinds (day, pbx, dimension, value, is_repeat, n)
    SELECT CAST((NEW.at + z.utc_offset) / 86400 AS INTEGER), coalesce(NEW.pbx, ''), 'channel', coalesce(NEW.channel, ''), NEW.is_repeat, 1
    FROM report_zone z WHERE z.since = (SELECT max(since) FROM report_zone WHERE since <= NEW.at) AND NEW.at < z.until
    ON CONFLICT (day, pbx, dimension, value, is_repeat) DO UPDATE SET n = n + excluded.n;
    INSERT INTO report_contact_kinds (day, pbx, dimension, value, is_repeat, n)
    SELECT CAST((NEW.at + z.utc_offset) / 86400 AS INTEGER), coalesce(NEW.pbx, ''), 'client_kind', coalesce(NEW.client_kind, ''), NEW.is_repeat, 1
    FROM report_zone z WHERE z.since = (SELECT max(since) FROM report_zone WHERE since <= NEW.at) AND NEW.at < z.until
    ON CONFLICT (day, pbx, dimension, value, is_repeat) DO UPDATE SET n = n + excluded.n;
    INSERT INTO report_contact_kinds (day, pbx, dimension, value, is_repeat, n)
    SELECT CAST((NEW.at + z.utc_offset) / 86400 AS INTEGER), coalesce(NEW.pbx, ''), 'reason', coalesce(NEW.reason, ''), NEW.is_repeat, 1
    FROM report_zone z WHERE z.since = (SELECT max(since) FROM report_zone WHERE since <= NEW.at) AND NEW.at < z.until
    ON CONFLICT (day, pbx, dimension, value, is_repeat) DO UPDATE SET n = n + excluded.n;
END;

CREATE TRIGGER report_contacts_update AFTER UPDATE ON contact_register
BEGIN
    INSERT INTO report_contact_agents (day, pbx, agent, is_repeat, contacts, request, booking, visit, phone)
    SELECT CAST((OLD.at + z.utc_offset) / 86400 AS INTEGER), coalesce(OLD.pbx, ''), coalesce(OLD.agent, ''), OLD.is_repeat, -(1), -((OLD.request_at IS NOT NULL OR OLD.booking_at IS NOT NULL OR OLD.visit_at IS NOT NULL)), -((OLD.booking_at IS NOT NULL OR OLD.visit_at IS NOT NULL)), -((OLD.visit_at IS NOT NULL)), -((OLD.channel = 'phone'))
    FROM report_zone z WHERE z.since = (SELECT max(since) FROM report_zone WHERE since <= OLD.at) AND OLD.at < z.until
    ON CONFLICT (day, pbx, agent, is_repeat) DO UPDATE SET contacts = contacts + excluded.contacts, request = request + excluded.request, booking = booking + excluded.booking, visit = visit + excluded.visit, phone = phone + excluded.phone;
    INSERT INTO report_contact_employees (day, pbx, employee, is_repeat, contacts, request, booking, visit)
    SELECT CAST((OLD.at + z.utc_offset) / 86400 AS INTEGER), coalesce(OLD.pbx, ''), coalesce(OLD.employee, ''), OLD.is_repeat, -(1), -((OLD.request_at IS NOT NULL OR OLD.booking_at IS NOT NULL OR OLD.visit_at IS NOT NULL)), -((OLD.booking_at IS NOT NULL OR OLD.visit_at IS NOT NULL)), -((OLD.visit_at IS NOT NULL))
    FROM report_zone z WHERE z.since = (SELECT max(since) FROM report_zone WHERE since <= OLD.at) AND OLD.at < z.until
    ON CONFLICT (day, pbx, employee, is_repeat) DO UPDATE SET contacts = contacts + excluded.contacts, request = request + excluded.request, booking = booking + excluded.booking, visit = visit + excluded.visit;
    INSERT INTO report_contact_kinds (day, pbx, dimension, value, is_repeat, n)
    SELECT CAST((OLD.at + z.utc_offset) / 86400 AS INTEGER), coalesce(OLD.pbx, ''), 'channel', coalesce(OLD.channel, ''), OLD.is_repeat, -(1)
    FROM report_zone z WHERE z.since = (SELECT max(since) FROM report_zone WHERE since <= OLD.at) AND OLD.at < z.until
    ON CONFLICT (day, pbx, dimension, value, is_repeat) DO UPDATE SET n = n + excluded.n;
    INSERT INTO report_contact_kinds (day, pbx, dimension, value, is_repeat, n)
    SELECT CAST((OLD.at + z.utc_offset) / 86400 AS INTEGER), coalesce(OLD.pbx, ''), 'client_kind', coalesce(OLD.client_kind, ''), OLD.is_repeat, -(1)
    FROM report_zone z WHERE z.since = (SELECT max(since) FROM report_zone WHERE since <= OLD.at) AND OLD.at < z.until
    ON CONFLICT (day, pbx, dimension, value, is_repeat) DO UPDATE SET n = n + excluded.n;
    INSERT INTO report_contact_kinds (day, pbx, dimension, value, is_repeat, n)
    SELECT CAST((OLD.at + z.utc_offset) / 86400 AS INTEGER), coalesce(OLD.pbx, ''), 'reason', coalesce(OLD.reason, ''), OLD.is_repeat, -(1)
    FROM report_zone z WHERE z.since = (SELECT max(since) FROM report_zone WHERE since <= OLD.at) AND OLD.at < z.until
    ON CONFLICT (day, pbx, dimension, value, is_repeat) DO UPDATE SET n = n + excluded.n;
    INSERT INTO report_contact_agents (day, pbx, agent, is_repeat, contacts, request, booking, visit, phone)
    SELECT CAST((NEW.at + z.utc_offset) / 86400 AS INTEGER), coalesce(NEW.pbx, ''), coalesce(NEW.agent, ''), NEW.is_repeat, 1, (NEW.request_at IS NOT NULL OR NEW.booking_at IS NOT NULL OR NEW.visit_at IS NOT NULL), (NEW.booking_at IS NOT NULL OR NEW.visit_at IS NOT NULL), (NEW.visit_at IS NOT NULL), (NEW.channel = 'phone')
    FROM report_zone z WHERE z.since = (SELECT max(since) FROM report_zone WHERE since <= NEW.at) AND NEW.at < z.until
    ON CONFLICT (day, pbx, agent, is_repeat) DO UPDATE SET contacts = contacts + excluded.contacts, request = request + excluded.request, booking = booking + excluded.booking, visit = visit + excluded.visit, phone = phone + excluded.phone;
    INSERT INTO report_contact_employees (day, pbx, employee, is_repeat, contacts, request, booking, visit)
    SELECT CAST((NEW.at + z.utc_offset) / 86400 AS INTEGER), coalesce(NEW.pbx, ''), coalesce(NEW.employee, ''), NEW.is_repeat, 1, (NEW.request_at IS NOT NULL OR NEW.booking_at IS NOT NULL OR NEW.visit_at IS NOT NULL), (NEW.booking_at IS NOT NULL OR NEW.visit_at IS NOT NULL), (NEW.visit_at IS NOT NULL)
    FROM report_zone z WHERE z.since = (SELECT max(since) FROM report_zone WHERE since <= NEW.at) AND NEW.at < z.until
    ON CONFLICT (day, pbx, employee, is_repeat) DO UPDATE SET contacts = contacts + excluded.contacts, request = request + excluded.request, booking = booking + excluded.booking, visit = visit + excluded.visit;
    INSERT INTO report_contact_kinds (day, pbx, dimension, value, is_repeat, n)
    SELECT CAST((NEW.at + z.utc_offset) / 86400 AS INTEGER), coalesce(NEW.pbx, ''), 'channel', coalesce(NEW.channel, ''), NEW.is_repeat, 1
    FROM report_zone z WHERE z.since = (SELECT max(since) FROM report_zone WHERE since <= NEW.at) AND NEW.at < z.until
    ON CONFLICT (day, pbx, dimension, value, is_repeat) DO UPDATE SET n = n + excluded.n;
    INSERT INTO report_contact_kinds (day, pbx, dimension, value, is_repeat, n)
    SELECT CAST((NEW.at + z.utc_offset) / 86400 AS INTEGER), coalesce(NEW.pbx, ''), 'client_kind', coalesce(NEW.client_kind, ''), NEW.is_repeat, 1
    FROM report_zone z WHERE z.since = (SELECT max(since) FROM report_zone WHERE since <= NEW.at) AND NEW.at < z.until
    ON CONFLICT (day, pbx, dimension, value, is_repeat) DO UPDATE SET n = n + excluded.n;
    INSERT INTO report_contact_kinds (day, pbx, dimension, value, is_repeat, n)
    SELECT CAST((NEW.at + z.utc_offset) / 86400 AS INTEGER), coalesce(NEW.pbx, ''), 'reason', coalesce(NEW.reason, ''), NEW.is_repeat, 1
    FROM report_zone z WHERE z.since = (SELECT max(since) FROM report_zone WHERE since <= NEW.at) AND NEW.at < z.until
    ON CONFLICT (day, pbx, dimension, value, is_repeat) DO UPDATE SET n = n + excluded.n;
END;

CREATE TRIGGER report_contacts_delete AFTER DELETE ON contact_register
BEGIN
    INSERT INTO report_contact_agents (day, pbx, agent, is_repeat, contacts, request, booking, visit, phone)
    SELECT CAST((OLD.at + z.utc_offset) / 86400 AS INTEGER), coalesce(OLD.pbx, ''), coalesce(OLD.agent, ''), OLD.is_repeat, -(1), -((OLD.request_at IS NOT NULL OR OLD.booking_at IS NOT NULL OR OLD.visit_at IS NOT NULL)), -((OLD.booking_at IS NOT NULL OR OLD.visit_at IS NOT NULL)), -((OLD.visit_at IS NOT NULL)), -((OLD.channel = 'phone'))
    FROM report_zone z WHERE z.since = (SELECT max(since) FROM report_zone WHERE since <= OLD.at) AND OLD.at < z.until
    ON CONFLICT (day, pbx, agent, is_repeat) DO UPDATE SET contacts = contacts + excluded.contacts, request = request + excluded.request, booking = booking + excluded.booking, visit = visit + excluded.visit, phone = phone + excluded.phone;
    INSERT INTO report_contact_employees (day, pbx, employee, is_repeat, contacts, request, booking, visit)
    SELECT CAST((OLD.at + z.utc_offset) / 86400 AS INTEGER), coalesce(OLD.pbx, ''), coalesce(OLD.employee, ''), OLD.is_repeat, -(1), -((OLD.request_at IS NOT NULL OR OLD.booking_at IS NOT NULL OR OLD.visit_at IS NOT NULL)), -((OLD.booking_at IS NOT NULL OR OLD.visit_at IS NOT NULL)), -((OLD.visit_at IS NOT NULL))
    FROM report_zone z WHERE z.since = (SELECT max(since) FROM report_zone WHERE since <= OLD.at) AND OLD.at < z.until
    ON CONFLICT (day, pbx, employee, is_repeat) DO UPDATE SET contacts = contacts + excluded.contacts, request = request + excluded.request, booking = booking + excluded.booking, visit = visit + excluded.visit;
    INSERT INTO report_contact_kinds (day, pbx, dimension, value, is_repeat, n)
    SELECT CAST((OLD.at + z.utc_offset) / 86400 AS INTEGER), coalesce(OLD.pbx, ''), 'channel', coalesce(OLD.channel, ''), OLD.is_repeat, -(1)
    FROM report_zone z WHERE z.since = (SELECT max(since) FROM report_zone WHERE since <= OLD.at) AND OLD.at < z.until
    ON CONFLICT (day, pbx, dimension, value, is_repeat) DO UPDATE SET n = n + excluded.n;
    INSERT INTO report_contact_kinds (day, pbx, dimension, value, is_repeat, n)
    SELECT CAST((OLD.at + z.utc_offset) / 86400 AS INTEGER), coalesce(OLD.pbx, ''), 'client_kind', coalesce(OLD.client_kind, ''), OLD.is_repeat, -(1)
    FROM report_zone z WHERE z.since = (SELECT max(since) FROM report_zone WHERE since <= OLD.at) AND OLD.at < z.until
    ON CONFLICT (day, pbx, dimension, value, is_repeat) DO UPDATE SET n = n + excluded.n;
    INSERT INTO report_contact_kinds (day, pbx, dimension, value, is_repeat, n)
    SELECT CAST((OLD.at + z.utc_offset) / 86400 AS INTEGER), coalesce(OLD.pbx, ''), 'reason', coalesce(OLD.reason, ''), OLD.is_repeat, -(1)
    FROM report_zone z WHERE z.since = (SELECT max(since) FROM report_zone WHERE since <= OLD.at) AND OLD.at < z.until
    ON CONFLICT (day, pbx, dimension, value, is_repeat) DO UPDATE SET n = n + excluded.n;
END;

CREATE TRIGGER report_missed_insert AFTER INSERT ON missed
BEGIN
    INSERT INTO report_missed (day, pbx, reason, closed_by, n)
    SELECT CAST((NEW.missed_at + z.utc_offset) / 86400 AS INTEGER), NEW.pbx, NEW.reason, coalesce(NEW.closed_by, ''), 1
    FROM report_zone z WHERE z.since = (SELECT max(since) FROM report_zone WHERE since <= NEW.missed_at) AND NEW.missed_at < z.until
    ON CONFLICT (day, pbx, reason, closed_by) DO UPDATE SET n = n + excluded.n;
END;

CREATE TRIGGER report_missed_update AFTER UPDATE ON missed
BEGIN
    INSERT INTO report_missed (day, pbx, reason, closed_by, n)
    SELECT CAST((OLD.missed_at + z.utc_offset) / 86400 AS INTEGER), OLD.pbx, OLD.reason, coalesce(OLD.closed_by, ''), -(1)
    FROM report_zone z WHERE z.since = (SELECT max(since) FROM report_zone WHERE since <= OLD.missed_at) AND OLD.missed_at < z.until
    ON CONFLICT (day, pbx, reason, closed_by) DO UPDATE SET n = n + excluded.n;
    INSERT INTO report_missed (day, pbx, reason, closed_by, n)
    SELECT CAST((NEW.missed_at + z.utc_offset) / 86400 AS INTEGER), NEW.pbx, NEW.reason, coalesce(NEW.closed_by, ''), 1
    FROM report_zone z WHERE z.since = (SELECT max(since) FROM report_zone WHERE since <= NEW.missed_at) AND NEW.missed_at < z.until
    ON CONFLICT (day, pbx, reason, closed_by) DO UPDATE SET n = n + excluded.n;
END;

CREATE TRIGGER report_missed_delete AFTER DELETE ON missed
BEGIN
    INSERT INTO report_missed (day, pbx, reason, closed_by, n)
    SELECT CAST((OLD.missed_at + z.utc_offset) / 86400 AS INTEGER), OLD.pbx, OLD.reason, coalesce(OLD.closed_by, ''), -(1)
    FROM report_zone z WHERE z.since = (SELECT max(since) FROM report_zone WHERE since <= OLD.missed_at) AND OLD.missed_at < z.until
    ON CONFLICT (day, pbx, reason, closed_by) DO UPDATE SET n = n + excluded.n;
END;

CREATE TRIGGER report_agent_misses_insert AFTER INSERT ON agent_misses
BEGIN
    INSERT INTO report_agent_misses (day, pbx, agent, reason, n)
    SELECT CAST((NEW.rang_at + z.utc_offset) / 86400 AS INTEGER), NEW.pbx, NEW.agent, NEW.reason, 1
    FROM report_zone z WHERE z.since = (SELECT max(since) FROM report_zone WHERE since <= NEW.rang_at) AND NEW.rang_at < z.until
    ON CONFLICT (day, pbx, agent, reason) DO UPDATE SET n = n + excluded.n;
END;

CREATE TRIGGER report_agent_misses_update AFTER UPDATE ON agent_misses
BEGIN
    INSERT INTO report_agent_misses (day, pbx, agent, reason, n)
    SELECT CAST((OLD.rang_at + z.utc_offset) / 86400 AS INTEGER), OLD.pbx, OLD.agent, OLD.reason, -(1)
    FROM report_zone z WHERE z.since = (SELECT max(since) FROM report_zone WHERE since <= OLD.rang_at) AND OLD.rang_at < z.until
    ON CONFLICT (day, pbx, agent, reason) DO UPDATE SET n = n + excluded.n;
    INSERT INTO report_agent_misses (day, pbx, agent, reason, n)
    SELECT CAST((NEW.rang_at + z.utc_offset) / 86400 AS INTEGER), NEW.pbx, NEW.agent, NEW.reason, 1
    FROM report_zone z WHERE z.since = (SELECT max(since) FROM report_zone WHERE since <= NEW.rang_at) AND NEW.rang_at < z.until
    ON CONFLICT (day, pbx, agent, reason) DO UPDATE SET n = n + excluded.n;
END;

CREATE TRIGGER report_agent_misses_delete AFTER DELETE ON agent_misses
BEGIN
    INSERT INTO report_agent_misses (day, pbx, agent, reason, n)
    SELECT CAST((OLD.rang_at + z.utc_offset) / 86400 AS INTEGER), OLD.pbx, OLD.agent, OLD.reason, -(1)
    FROM report_zone z WHERE z.since = (SELECT max(since) FROM report_zone WHERE since <= OLD.rang_at) AND OLD.rang_at < z.until
    ON CONFLICT (day, pbx, agent, reason) DO UPDATE SET n = n + excluded.n;
END;
