-- 0010: recording, transcription, search and QA (issue 14), as the SQLite store's 0015: the transcription queue,
-- the transcripts, their words and keyword flags, QA's comments and scores, the retention's log of deleted audio.
-- Times of a call's words are seconds into its recording; every other time is epoch seconds.

-- One job per call, written before it is run; taken with a lease (`worker`, `lease_until`) by
-- `SELECT ... FOR UPDATE SKIP LOCKED`, so two nodes never take one job. Queue order: (call_started_at, id).
CREATE TABLE transcription_jobs (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    pbx             text COLLATE "C" NOT NULL,
    linkedid        text COLLATE "C" NOT NULL,
    sources         json NOT NULL DEFAULT '[]',
    choice          json NOT NULL DEFAULT '{}',
    call_started_at double precision NOT NULL,
    state           text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'running', 'done', 'failed')),
    attempts        bigint NOT NULL DEFAULT 0,
    queued_at       double precision NOT NULL,
    started_at      double precision,
    finished_at     double precision,
    worker          text,
    lease_until     double precision,
    reason          text,
    UNIQUE (pbx, linkedid)
);
CREATE INDEX transcription_jobs_queue ON transcription_jobs (state, call_started_at, id);
CREATE INDEX transcription_jobs_lease ON transcription_jobs (state, lease_until);

-- A call's transcript, one row per call; each speaker's stems (cti/stemming.py) in order, space-separated.
CREATE TABLE transcripts (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    pbx             text COLLATE "C" NOT NULL,
    linkedid        text COLLATE "C" NOT NULL,
    call_started_at double precision NOT NULL,
    engine          text NOT NULL,
    model           text NOT NULL,
    duration        double precision NOT NULL,
    language        text,
    created_at      double precision NOT NULL,
    agent_stems     text COLLATE "C" NOT NULL DEFAULT '',
    customer_stems  text COLLATE "C" NOT NULL DEFAULT '',
    unknown_stems   text COLLATE "C" NOT NULL DEFAULT '',
    UNIQUE (pbx, linkedid)
);
CREATE INDEX transcripts_started ON transcripts (call_started_at, id);

-- The search's terms of a transcript: each stem tagged with its speaker's letter (`a_машин`, `c_car`, `u_…`; a
-- stem holds letters and digits only, never `_`). The GIN index over them answers "every stem, on this lane"
-- (`@>`) and "this stem, on any lane" (`&&`) exactly as the SQLite store's FTS5 index does: whole stems, no
-- parsing, no dictionary. Derived from the row's own columns, so `cti store copy` needs to bring nothing else.
CREATE FUNCTION transcript_terms(agent text, customer text, unknown text) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT array_remove(string_to_array('a_' || replace(agent, ' ', ' a_'), ' '), 'a_')
        || array_remove(string_to_array('c_' || replace(customer, ' ', ' c_'), ' '), 'c_')
        || array_remove(string_to_array('u_' || replace(unknown, ' ', ' u_'), ' '), 'u_')
$$;
CREATE INDEX transcripts_terms ON transcripts USING gin (transcript_terms(agent_stems, customer_stems, unknown_stems));

-- Every word of a transcript in order: speaker, text, where it plays, confidence, stems (space-separated).
CREATE TABLE transcript_words (
    transcript_id bigint NOT NULL REFERENCES transcripts (id) ON DELETE CASCADE,
    position      bigint NOT NULL,
    speaker       text NOT NULL CHECK (speaker IN ('agent', 'customer', 'unknown')),
    text          text NOT NULL,
    start_s       double precision NOT NULL,
    end_s         double precision NOT NULL,
    conf          double precision NOT NULL,
    stems         text COLLATE "C" NOT NULL DEFAULT '',
    PRIMARY KEY (transcript_id, position)
);

-- The keyword lists a transcript matched.
CREATE TABLE transcript_flags (
    transcript_id bigint NOT NULL REFERENCES transcripts (id) ON DELETE CASCADE,
    flag          text COLLATE "C" NOT NULL,
    PRIMARY KEY (transcript_id, flag)
);
CREATE INDEX transcript_flags_flag ON transcript_flags (flag, transcript_id);

-- QA's remarks pinned to a moment of a call.
CREATE TABLE qa_comments (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    pbx       text COLLATE "C" NOT NULL,
    linkedid  text COLLATE "C" NOT NULL,
    at_second double precision NOT NULL,
    text      text NOT NULL,
    author    text NOT NULL,
    at        double precision NOT NULL
);
CREATE INDEX qa_comments_call ON qa_comments (pbx, linkedid, at_second);

-- A reviewer's filled checklist for a call: one per call, checklist and reviewer (saving again replaces it).
CREATE TABLE qa_scores (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    pbx             text COLLATE "C" NOT NULL,
    linkedid        text COLLATE "C" NOT NULL,
    checklist       text COLLATE "C" NOT NULL,
    answers         json NOT NULL DEFAULT '{}',
    points          double precision NOT NULL,
    max_points      double precision NOT NULL,
    agent           text COLLATE "C",
    author          text COLLATE "C" NOT NULL,
    at              double precision NOT NULL,
    call_started_at double precision NOT NULL,
    UNIQUE (pbx, linkedid, checklist, author)
);
CREATE INDEX qa_scores_started ON qa_scores (call_started_at);

-- The retention's log: each recording file it deleted.
CREATE TABLE audio_deletions (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    pbx      text COLLATE "C" NOT NULL,
    linkedid text COLLATE "C" NOT NULL,
    name     text NOT NULL,
    at       double precision NOT NULL,
    reason   text NOT NULL
);
CREATE INDEX audio_deletions_at ON audio_deletions (at, id);
