-- 0003: the client directory: contacts, their phone numbers and vehicles, and calls attached to a contact
-- by hand. Keys are computed in Python (cti/directory.py, cti/phones.py, cti/plates.py) so that every
-- store implementation matches the same way.
CREATE TABLE contacts (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,             -- "Иванов Пётр Сергеевич", or a company's name
    name_key    TEXT NOT NULL,             -- folded (lower case, ё→е, one space): prefix search by surname
    kind        TEXT NOT NULL DEFAULT 'private'
                CHECK (kind IN ('private', 'corporate', 'partner', 'employee')),
    email       TEXT,
    notes       TEXT,
    external_id TEXT,                      -- the contact's code in the CRM (1C) it was imported from
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL
);
CREATE INDEX contacts_name_key ON contacts (name_key);
CREATE UNIQUE INDEX contacts_external_id ON contacts (external_id) WHERE external_id IS NOT NULL;

CREATE TABLE contact_phones (
    contact_id INTEGER NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    number     TEXT NOT NULL,              -- as written
    number_key TEXT NOT NULL,              -- cti.phones.normalize_number
    UNIQUE (contact_id, number_key)        -- listed in the order they were given (rowid)
);
CREATE INDEX contact_phones_key ON contact_phones (number_key);

CREATE TABLE vehicles (
    id           INTEGER PRIMARY KEY,
    contact_id   INTEGER REFERENCES contacts (id) ON DELETE SET NULL,
    make         TEXT,                     -- canonical (cti.makes)
    model        TEXT,
    year         INTEGER,
    plate        TEXT,                     -- as written
    plate_key    TEXT,                     -- A123BC777 (cti.plates)
    plate_base   TEXT,                     -- A123BC: the region is optional in a query
    plate_number TEXT,                     -- 123: what an agent hears first
    vin          TEXT
);
CREATE INDEX vehicles_contact ON vehicles (contact_id);
CREATE INDEX vehicles_plate_base ON vehicles (plate_base);
CREATE INDEX vehicles_plate_number ON vehicles (plate_number);
CREATE INDEX vehicles_vin ON vehicles (vin);

-- A call an agent attached to a contact (a caller from an unknown number, a relative's phone...).
CREATE TABLE call_contacts (
    linkedid    TEXT PRIMARY KEY NOT NULL,
    contact_id  INTEGER NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    attached_by TEXT,
    attached_at REAL NOT NULL
);
CREATE INDEX call_contacts_contact ON call_contacts (contact_id);
