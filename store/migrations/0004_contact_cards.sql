-- 0004: each contact carries its phones and vehicles as JSON, written with them, so that a lookup reads one
-- row per contact found instead of two sub-queries each (a surname prefix returning 20 contacts went from
-- ~0.6 ms to ~0.2 ms inside SQLite at a million contacts: bench/directory.py). contact_phones and vehicles
-- stay the searchable truth; store/sqlite_directory.py writes both in the same transaction.
ALTER TABLE contacts ADD COLUMN phones_json TEXT NOT NULL DEFAULT '[]';
ALTER TABLE contacts ADD COLUMN vehicles_json TEXT NOT NULL DEFAULT '[]';

UPDATE contacts SET
    phones_json = (SELECT json_group_array(number)
                   FROM (SELECT p.number FROM contact_phones p WHERE p.contact_id = contacts.id ORDER BY p.rowid)),
    vehicles_json = (SELECT json_group_array(json_array(id, make, model, year, plate, vin))
                     FROM (SELECT * FROM vehicles v WHERE v.contact_id = contacts.id ORDER BY v.id));
