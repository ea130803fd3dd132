-- 0008: the missed-call register a team shares (issue 12): who is calling a number back now (a claim), and what
-- each call-back came to (a result), kept on the entries of that number.
--
-- A number is (pbx, caller_key): the register is per PBX, and caller_key is the normalised number (cti.phones) the
-- entries of one caller share. A withheld number has no key and can be neither claimed nor called back.

-- One claim per number at a time: "calling back, taken by Anna" until `until` (epoch seconds). A claim whose
-- `until` has passed counts as released (another user may take the number); the daemon deletes it and tells the
-- panels. Released by the claimant, by a call-back of the number that reached the customer (the call-back rule,
-- cti/callbacks.py), or by the claimant recording a result.
CREATE TABLE register_claims (
    pbx        TEXT NOT NULL,
    caller_key TEXT NOT NULL,
    caller     TEXT,                     -- the number as the newest entry wrote it (for people)
    by         TEXT NOT NULL,            -- the user's name
    by_name    TEXT,                     -- the user's display name, for the other supervisors
    claimed_at REAL NOT NULL,
    until      REAL NOT NULL,
    PRIMARY KEY (pbx, caller_key)
);
CREATE INDEX register_claims_until ON register_claims (until);

-- What a call-back came to, one row per entry of the number it was recorded on (the entries open when it was).
CREATE TABLE missed_results (
    id         INTEGER PRIMARY KEY,
    entry_id   INTEGER NOT NULL REFERENCES missed (id) ON DELETE CASCADE,
    pbx        TEXT NOT NULL,
    caller_key TEXT NOT NULL,
    at         REAL NOT NULL,
    result     TEXT NOT NULL CHECK (result IN ('reached', 'no_answer', 'busy', 'wrong_number', 'left_message')),
    comment    TEXT,
    by         TEXT NOT NULL
);
CREATE INDEX missed_results_entry ON missed_results (entry_id, id);
CREATE INDEX missed_results_number ON missed_results (pbx, caller_key, at);
