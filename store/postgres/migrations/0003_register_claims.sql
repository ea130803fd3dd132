-- 0003: the missed-call register a team shares (issue 12), as the SQLite store's 0008: who is calling a number back
-- now (a claim) and what each call-back came to (a result), kept on the entries of that number. A number is
-- (pbx, caller_key); a withheld number has no key and can be neither claimed nor called back.

-- One claim per number at a time, until `until` (epoch seconds); a claim past its `until` counts as released.
CREATE TABLE register_claims (
    pbx        text COLLATE "C" NOT NULL,
    caller_key text COLLATE "C" NOT NULL,
    caller     text,
    by         text NOT NULL,
    by_name    text,
    claimed_at double precision NOT NULL,
    until      double precision NOT NULL,
    PRIMARY KEY (pbx, caller_key)
);
CREATE INDEX register_claims_until ON register_claims (until);

-- What a call-back came to, one row per entry of the number it was recorded on.
CREATE TABLE missed_results (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    entry_id   bigint NOT NULL REFERENCES missed (id) ON DELETE CASCADE,
    pbx        text COLLATE "C" NOT NULL,
    caller_key text COLLATE "C" NOT NULL,
    at         double precision NOT NULL,
    result     text NOT NULL CHECK (result IN ('reached', 'no_answer', 'busy', 'wrong_number', 'left_message')),
    comment    text,
    by         text NOT NULL
);
CREATE INDEX missed_results_entry ON missed_results (entry_id, id);
CREATE INDEX missed_results_number ON missed_results (pbx, caller_key, at);
