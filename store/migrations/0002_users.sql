-- 0002: panel users and their API tokens.
--
-- Passwords and tokens are stored hashed only (ui_bridge/auth.py): `password_hash` is an scrypt string
-- with its own salt and parameters; `token_hash` is the SHA-256 of a random 256-bit token.
CREATE TABLE users (
    name          TEXT PRIMARY KEY NOT NULL COLLATE NOCASE,
    role          TEXT NOT NULL CHECK (role IN ('agent', 'admin', 'qa')),
    extension     TEXT,
    display_name  TEXT,
    password_hash TEXT,
    created_at    REAL NOT NULL,
    CHECK (role != 'agent' OR extension IS NOT NULL)
);

CREATE TABLE api_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    user_name  TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    label      TEXT,
    created_at REAL NOT NULL
);
CREATE INDEX api_tokens_user ON api_tokens (user_name);
