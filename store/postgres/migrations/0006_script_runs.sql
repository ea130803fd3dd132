-- 0006: the contact script's runs (issue 13), as the SQLite store's 0011: kept server-side so that a browser
-- reload, a second tab or a daemon restart continues where the agent was. `script_versions`: the text of every
-- script version a run followed (a run continues on its version after the script was edited). `script_runs`: one
-- row per run, its runner state (`state_to_json`) and a `revision` each save checks (two tabs or nodes answering at
-- once cannot overwrite each other); one run per agent and call.
CREATE TABLE script_versions (
    name      text COLLATE "C" NOT NULL,
    version   text COLLATE "C" NOT NULL,
    source    text NOT NULL,
    loaded_at double precision NOT NULL,
    PRIMARY KEY (name, version)
);
CREATE TABLE script_runs (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    pbx        text COLLATE "C" NOT NULL,
    agent      text COLLATE "C" NOT NULL,
    linkedid   text COLLATE "C",
    script     text COLLATE "C" NOT NULL,
    version    text COLLATE "C" NOT NULL,
    status     text NOT NULL CHECK (status IN ('open', 'registered', 'ended', 'discarded')),
    state      json NOT NULL,
    revision   bigint NOT NULL DEFAULT 1,
    started_at double precision NOT NULL,
    updated_at double precision NOT NULL
);
CREATE UNIQUE INDEX script_runs_call ON script_runs (pbx, linkedid, agent) WHERE linkedid IS NOT NULL;
CREATE INDEX script_runs_open ON script_runs (pbx, agent, id) WHERE status = 'open';
