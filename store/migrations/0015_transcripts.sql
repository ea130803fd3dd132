-- 0015: recording, transcription, search and QA (issue 14): the transcription queue, the transcripts and their
-- search index, the keyword flags, QA's comments and scores, and the retention's log of deleted audio.
-- Times of a call's words are seconds into its recording; every other time is epoch seconds.

-- The transcription queue: one job per call (pbx, linkedid), written before it is run, so a restart loses none.
-- `sources` is the JSON list of the call's audio files ({name, layout, left}), `choice` the JSON object of the
-- engine and model ({engine, model, language}). A job is taken with a lease (`worker`, `lease_until`): a daemon
-- killed mid-job leaves it 'running' with a lease that runs out, and the next taker runs it again (`attempts`
-- counts the tries). `reason`: why the last try failed. Queue order: (call_started_at, id).
CREATE TABLE transcription_jobs (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    pbx             TEXT NOT NULL,
    linkedid        TEXT NOT NULL,
    sources         TEXT NOT NULL DEFAULT '[]',
    choice          TEXT NOT NULL DEFAULT '{}',
    call_started_at REAL NOT NULL,
    state           TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'running', 'done', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    queued_at       REAL NOT NULL,
    started_at      REAL,
    finished_at     REAL,
    worker          TEXT,
    lease_until     REAL,
    reason          TEXT,
    UNIQUE (pbx, linkedid)
);
CREATE INDEX transcription_jobs_queue ON transcription_jobs (state, call_started_at, id);
CREATE INDEX transcription_jobs_lease ON transcription_jobs (state, lease_until);

-- A call's transcript: one row per call (a job done again replaces it). `agent_stems`, `customer_stems`,
-- `unknown_stems`: the stems (cti/stemming.py) of each speaker's words in order, separated by spaces: what the
-- search matches (here through the FTS5 index below; PostgreSQL indexes the same columns with GIN).
CREATE TABLE transcripts (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    pbx             TEXT NOT NULL,
    linkedid        TEXT NOT NULL,
    call_started_at REAL NOT NULL,
    engine          TEXT NOT NULL,
    model           TEXT NOT NULL,
    duration        REAL NOT NULL,
    language        TEXT,
    created_at      REAL NOT NULL,
    agent_stems     TEXT NOT NULL DEFAULT '',
    customer_stems  TEXT NOT NULL DEFAULT '',
    unknown_stems   TEXT NOT NULL DEFAULT '',
    UNIQUE (pbx, linkedid)
);
CREATE INDEX transcripts_started ON transcripts (call_started_at, id);

-- Every word of a transcript, in the transcript's order (`position`): who said it, its text as the engine wrote
-- it, where it plays (`start_s`, `end_s`), the engine's confidence, and its stems (space-separated; usually one):
-- the search finds the first word with a query's stem and opens the call at its `start_s`.
CREATE TABLE transcript_words (
    transcript_id INTEGER NOT NULL REFERENCES transcripts (id) ON DELETE CASCADE,
    position      INTEGER NOT NULL,
    speaker       TEXT NOT NULL CHECK (speaker IN ('agent', 'customer', 'unknown')),
    text          TEXT NOT NULL,
    start_s       REAL NOT NULL,
    end_s         REAL NOT NULL,
    conf          REAL NOT NULL,
    stems         TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (transcript_id, position)
) WITHOUT ROWID;

-- The keyword lists ([transcription.keywords]) a transcript matched.
CREATE TABLE transcript_flags (
    transcript_id INTEGER NOT NULL REFERENCES transcripts (id) ON DELETE CASCADE,
    flag          TEXT NOT NULL,
    PRIMARY KEY (transcript_id, flag)
) WITHOUT ROWID;
CREATE INDEX transcript_flags_flag ON transcript_flags (flag, transcript_id);

-- The full-text index of the transcripts' stems, one row per transcript (its rowid the transcript's id), a column
-- per speaker. External content: the text is the transcripts' own, kept in step by the triggers. Each stem is one
-- token (letters and digits only); no diacritics folded, so a token matches exactly the stem it is (й is not и).
-- Derived data: `cti store copy` leaves it behind (PostgreSQL indexes the same columns itself).
CREATE VIRTUAL TABLE transcript_search USING fts5(
    agent_stems, customer_stems, unknown_stems,
    content = 'transcripts', content_rowid = 'id', tokenize = 'unicode61 remove_diacritics 0'
);
CREATE TRIGGER transcripts_search_insert AFTER INSERT ON transcripts BEGIN
    INSERT INTO transcript_search (rowid, agent_stems, customer_stems, unknown_stems)
    VALUES (new.id, new.agent_stems, new.customer_stems, new.unknown_stems);
END;
CREATE TRIGGER transcripts_search_delete AFTER DELETE ON transcripts BEGIN
    INSERT INTO transcript_search (transcript_search, rowid, agent_stems, customer_stems, unknown_stems)
    VALUES ('delete', old.id, old.agent_stems, old.customer_stems, old.unknown_stems);
END;
CREATE TRIGGER transcripts_search_update AFTER UPDATE ON transcripts BEGIN
    INSERT INTO transcript_search (transcript_search, rowid, agent_stems, customer_stems, unknown_stems)
    VALUES ('delete', old.id, old.agent_stems, old.customer_stems, old.unknown_stems);
    INSERT INTO transcript_search (rowid, agent_stems, customer_stems, unknown_stems)
    VALUES (new.id, new.agent_stems, new.customer_stems, new.unknown_stems);
END;

-- QA's remarks pinned to a moment of a call (`at_second` into its recording), by a user (`author`), at `at`.
CREATE TABLE qa_comments (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    pbx       TEXT NOT NULL,
    linkedid  TEXT NOT NULL,
    at_second REAL NOT NULL,
    text      TEXT NOT NULL,
    author    TEXT NOT NULL,
    at        REAL NOT NULL
);
CREATE INDEX qa_comments_call ON qa_comments (pbx, linkedid, at_second);

-- A reviewer's filled checklist for a call: one per call, checklist and reviewer (saving again replaces it).
-- `answers`: the JSON object item -> points; `points` of `max_points` the weighted sums (cti/qa.py); `agent` the
-- extension that answered the call; `call_started_at` when the call started (from the journal, else the
-- transcription job, else the score's own time): the per-agent report's period reads it.
CREATE TABLE qa_scores (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    pbx             TEXT NOT NULL,
    linkedid        TEXT NOT NULL,
    checklist       TEXT NOT NULL,
    answers         TEXT NOT NULL DEFAULT '{}',
    points          REAL NOT NULL,
    max_points      REAL NOT NULL,
    agent           TEXT,
    author          TEXT NOT NULL,
    at              REAL NOT NULL,
    call_started_at REAL NOT NULL,
    UNIQUE (pbx, linkedid, checklist, author)
);
CREATE INDEX qa_scores_started ON qa_scores (call_started_at);

-- The retention's log: each recording file it deleted (the call's transcript stays), when and why.
CREATE TABLE audio_deletions (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    pbx      TEXT NOT NULL,
    linkedid TEXT NOT NULL,
    name     TEXT NOT NULL,
    at       REAL NOT NULL,
    reason   TEXT NOT NULL
);
CREATE INDEX audio_deletions_at ON audio_deletions (at, id);
