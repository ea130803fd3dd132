-- 0011: the contact script's runs (issue 13), kept server-side so that a browser reload, a second tab or a
-- daemon restart continues where the agent was.
--
-- `script_versions`: the text of every script version a run followed, by its name and content-derived version
-- (cti/scripts/loader.py): a run started before the script was edited continues on the version it started with,
-- after a restart too. Written once per version when the daemon loads it; never changed.
--
-- `script_runs`: one row per run: the agent's extension on its PBX, the call it was launched for (NULL for a run
-- started by hand: a visit, a web enquiry, a call-back), the script and version, its status, and `state`, the
-- runner's saved state (`state_to_json`, a JSON object). `revision` grows with each save: a save names the revision
-- it read, so two tabs (or two nodes) answering the same step at once cannot overwrite each other. One run per
-- agent and call (the unique index): the answer pushed to a second tab finds the first run. Times: epoch seconds.
CREATE TABLE script_versions (
    name      TEXT NOT NULL,
    version   TEXT NOT NULL,
    source    TEXT NOT NULL,
    loaded_at REAL NOT NULL,
    PRIMARY KEY (name, version)
);
CREATE TABLE script_runs (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    pbx        TEXT NOT NULL,
    agent      TEXT NOT NULL,
    linkedid   TEXT,
    script     TEXT NOT NULL,
    version    TEXT NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('open', 'registered', 'ended', 'discarded')),
    state      TEXT NOT NULL,
    revision   INTEGER NOT NULL DEFAULT 1,
    started_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE UNIQUE INDEX script_runs_call ON script_runs (pbx, linkedid, agent) WHERE linkedid IS NOT NULL;
CREATE INDEX script_runs_open ON script_runs (pbx, agent, id) WHERE status = 'open';
