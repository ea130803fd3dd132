-- 0009: the reports' day counts, as the SQLite store's 0014 (issue 13: a report over a year in under 1 s; why and how
-- they are read: store/report_days.py). Per local day of the site's zone (`report_zone`: its spans of constant UTC
-- offset, written with the counts rebuilt when the store is told another zone; empty: nothing is counted and the
-- reports count rows), kept by triggers in the same transaction as the rows they count, whichever code or node writes
-- them. A key column a row leaves NULL is '' here.
CREATE TABLE report_zone (
    since      double precision PRIMARY KEY,
    until      double precision NOT NULL,
    utc_offset integer NOT NULL,
    zone       text NOT NULL
);

CREATE TABLE report_answered (
    day        integer NOT NULL,
    pbx        text COLLATE "C" NOT NULL,
    agent      text NOT NULL,
    answered   bigint NOT NULL,
    registered bigint NOT NULL,
    PRIMARY KEY (day, pbx, agent)
);
CREATE TABLE report_contact_agents (
    day       integer NOT NULL,
    pbx       text COLLATE "C" NOT NULL,
    agent     text NOT NULL,
    is_repeat boolean NOT NULL,
    contacts  bigint NOT NULL,
    phone     bigint NOT NULL,
    request   bigint NOT NULL,
    booking   bigint NOT NULL,
    visit     bigint NOT NULL,
    PRIMARY KEY (day, pbx, agent, is_repeat)
);
CREATE TABLE report_contact_employees (
    day       integer NOT NULL,
    pbx       text COLLATE "C" NOT NULL,
    employee  text NOT NULL,
    is_repeat boolean NOT NULL,
    contacts  bigint NOT NULL,
    request   bigint NOT NULL,
    booking   bigint NOT NULL,
    visit     bigint NOT NULL,
    PRIMARY KEY (day, pbx, employee, is_repeat)
);
CREATE TABLE report_contact_kinds (
    day       integer NOT NULL,
    pbx       text COLLATE "C" NOT NULL,
    dimension text NOT NULL CHECK (dimension IN ('channel', 'client_kind', 'reason')),
    value     text NOT NULL,
    is_repeat boolean NOT NULL,
    n         bigint NOT NULL,
    PRIMARY KEY (day, pbx, dimension, value, is_repeat)
);
CREATE TABLE report_missed (
    day       integer NOT NULL,
    pbx       text COLLATE "C" NOT NULL,
    reason    text NOT NULL,
    closed_by text NOT NULL,
    n         bigint NOT NULL,
    PRIMARY KEY (day, pbx, reason, closed_by)
);
CREATE TABLE report_agent_misses (
    day    integer NOT NULL,
    pbx    text COLLATE "C" NOT NULL,
    agent  text NOT NULL,
    reason text NOT NULL,
    n      bigint NOT NULL,
    PRIMARY KEY (day, pbx, agent, reason)
);

-- The local day of a moment in the kept zone; NULL when no zone is kept (nothing is then counted).
CREATE FUNCTION report_day(moment double precision) RETURNS integer LANGUAGE sql STABLE AS $$
    SELECT floor((moment + z.utc_offset) / 86400)::integer FROM report_zone z
    WHERE z.since = (SELECT max(since) FROM report_zone WHERE since <= moment) AND moment < z.until
$$;

-- Each trigger counts the old row out (-1: an update, a delete) and the new one in (+1: an insert, an update).
CREATE FUNCTION report_count_call(c calls, sign integer) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    d integer := report_day(c.started_at);
BEGIN
    IF d IS NULL OR c.direction <> 'inbound' OR c.outcome <> 'answered' THEN
        RETURN;
    END IF;
    INSERT INTO report_answered AS r (day, pbx, agent, answered, registered)
    VALUES (d, c.pbx, coalesce(c.answered_by, ''), sign,
            CASE WHEN EXISTS (SELECT 1 FROM contact_calls cc WHERE cc.linkedid = c.linkedid AND cc.pbx = c.pbx)
                 THEN sign ELSE 0 END)
    ON CONFLICT (day, pbx, agent) DO UPDATE
        SET answered = r.answered + excluded.answered, registered = r.registered + excluded.registered;
END
$$;

CREATE FUNCTION report_count_link(l contact_calls, sign integer) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    -- A call is registered while at least one contact is linked to it: its first link and its last count.
    IF EXISTS (SELECT 1 FROM contact_calls o WHERE o.linkedid = l.linkedid AND o.pbx = l.pbx
               AND o.contact_id <> l.contact_id) THEN
        RETURN;
    END IF;
    UPDATE report_answered r SET registered = r.registered + sign
    FROM calls c
    WHERE c.linkedid = l.linkedid AND c.pbx = l.pbx AND c.direction = 'inbound' AND c.outcome = 'answered'
      AND r.day = report_day(c.started_at) AND r.pbx = c.pbx AND r.agent = coalesce(c.answered_by, '');
END
$$;

CREATE FUNCTION report_count_contact(k contact_register, sign integer) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    d integer := report_day(k.at);
    v_request integer := CASE WHEN k.request_at IS NOT NULL OR k.booking_at IS NOT NULL OR k.visit_at IS NOT NULL
                            THEN sign ELSE 0 END;
    v_booking integer := CASE WHEN k.booking_at IS NOT NULL OR k.visit_at IS NOT NULL THEN sign ELSE 0 END;
    v_visit integer := CASE WHEN k.visit_at IS NOT NULL THEN sign ELSE 0 END;
BEGIN
    IF d IS NULL THEN
        RETURN;
    END IF;
    INSERT INTO report_contact_agents AS r (day, pbx, agent, is_repeat, contacts, phone, request, booking, visit)
    VALUES (d, coalesce(k.pbx, ''), coalesce(k.agent, ''), k.is_repeat, sign,
            CASE WHEN k.channel = 'phone' THEN sign ELSE 0 END, v_request, v_booking, v_visit)
    ON CONFLICT (day, pbx, agent, is_repeat) DO UPDATE
        SET contacts = r.contacts + excluded.contacts, phone = r.phone + excluded.phone,
            request = r.request + excluded.request, booking = r.booking + excluded.booking,
            visit = r.visit + excluded.visit;
    INSERT INTO report_contact_employees AS r (day, pbx, employee, is_repeat, contacts, request, booking, visit)
    VALUES (d, coalesce(k.pbx, ''), coalesce(k.employee, ''), k.is_repeat, sign, v_request, v_booking, v_visit)
    ON CONFLICT (day, pbx, employee, is_repeat) DO UPDATE
        SET contacts = r.contacts + excluded.contacts, request = r.request + excluded.request,
            booking = r.booking + excluded.booking, visit = r.visit + excluded.visit;
    INSERT INTO report_contact_kinds AS r (day, pbx, dimension, value, is_repeat, n)
    VALUES (d, coalesce(k.pbx, ''), 'channel', k.channel, k.is_repeat, sign),
           (d, coalesce(k.pbx, ''), 'client_kind', coalesce(k.client_kind, ''), k.is_repeat, sign),
           (d, coalesce(k.pbx, ''), 'reason', coalesce(k.reason, ''), k.is_repeat, sign)
    ON CONFLICT (day, pbx, dimension, value, is_repeat) DO UPDATE SET n = r.n + excluded.n;
END
$$;

CREATE FUNCTION report_count_missed(m missed, sign integer) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    d integer := report_day(m.missed_at);
BEGIN
    IF d IS NULL THEN
        RETURN;
    END IF;
    INSERT INTO report_missed AS r (day, pbx, reason, closed_by, n)
    VALUES (d, m.pbx, m.reason, coalesce(m.closed_by, ''), sign)
    ON CONFLICT (day, pbx, reason, closed_by) DO UPDATE SET n = r.n + excluded.n;
END
$$;

CREATE FUNCTION report_count_agent_miss(a agent_misses, sign integer) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    d integer := report_day(a.rang_at);
BEGIN
    IF d IS NULL THEN
        RETURN;
    END IF;
    INSERT INTO report_agent_misses AS r (day, pbx, agent, reason, n)
    VALUES (d, a.pbx, a.agent, a.reason, sign)
    ON CONFLICT (day, pbx, agent, reason) DO UPDATE SET n = r.n + excluded.n;
END
$$;

CREATE FUNCTION report_days_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        CASE TG_TABLE_NAME
            WHEN 'calls' THEN PERFORM report_count_call(OLD, -1);
            WHEN 'contact_calls' THEN PERFORM report_count_link(OLD, -1);
            WHEN 'contact_register' THEN PERFORM report_count_contact(OLD, -1);
            WHEN 'missed' THEN PERFORM report_count_missed(OLD, -1);
            WHEN 'agent_misses' THEN PERFORM report_count_agent_miss(OLD, -1);
        END CASE;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        CASE TG_TABLE_NAME
            WHEN 'calls' THEN PERFORM report_count_call(NEW, 1);
            WHEN 'contact_calls' THEN PERFORM report_count_link(NEW, 1);
            WHEN 'contact_register' THEN PERFORM report_count_contact(NEW, 1);
            WHEN 'missed' THEN PERFORM report_count_missed(NEW, 1);
            WHEN 'agent_misses' THEN PERFORM report_count_agent_miss(NEW, 1);
        END CASE;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER report_days AFTER INSERT OR UPDATE OR DELETE ON calls
    FOR EACH ROW EXECUTE FUNCTION report_days_trigger();
CREATE TRIGGER report_days AFTER INSERT OR UPDATE OR DELETE ON contact_calls
    FOR EACH ROW EXECUTE FUNCTION report_days_trigger();
CREATE TRIGGER report_days AFTER INSERT OR UPDATE OR DELETE ON contact_register
    FOR EACH ROW EXECUTE FUNCTION report_days_trigger();
CREATE TRIGGER report_days AFTER INSERT OR UPDATE OR DELETE ON missed
    FOR EACH ROW EXECUTE FUNCTION report_days_trigger();
CREATE TRIGGER report_days AFTER INSERT OR UPDATE OR DELETE ON agent_misses
    FOR EACH ROW EXECUTE FUNCTION report_days_trigger();
