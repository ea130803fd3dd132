-- 0013: a CRM's outbox rows become visible in the order of their ids (issue 16's 1C pull feed).
-- The 1C feed (GET /api/crm/1c/events?after=N, store/crm_outbox.py crm_items_after) reads the rows above a cursor
-- by id. Ids come from a sequence when a row is inserted, and two nodes (or two connections of one node) queueing at
-- once could commit a higher id first: a reader that read it and moved its cursor past would never see the lower one.
-- So every insert first takes a lock of its CRM held to the end of its transaction, and only then its id (the
-- identity's value is replaced under the lock): one CRM's inserts commit one after the other, in id order. The
-- two-key form of the advisory lock (objsubid 2) cannot meet the leases' one-key locks (store/postgres/leases.py).
-- `cti store copy` (store/transfer.py) writes rows with their ids, in one transaction of its own: left as they are.
CREATE FUNCTION crm_outbox_in_order() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('cti.copying', true) = 'on' THEN  -- cti store copy: the rows keep the ids they had
        RETURN NEW;
    END IF;
    PERFORM pg_advisory_xact_lock(1617, hashtext(NEW.crm));
    NEW.id := nextval(pg_get_serial_sequence('crm_outbox', 'id'));
    RETURN NEW;
END $$;
CREATE TRIGGER crm_outbox_in_order BEFORE INSERT ON crm_outbox
    FOR EACH ROW EXECUTE FUNCTION crm_outbox_in_order();
