-- 0005: the panel's login sessions, in the store rather than in the daemon's memory.
--
-- Why here: a restart no longer logs everyone out, and the CLI (another process) revokes a user's sessions in
-- the same transaction that removes the user or changes their password or role; the daemon sees it at its next
-- check (every request, every WebSocket command, and a once-a-second sweep of the open sockets).
-- `token_hash` is the SHA-256 of the cookie's value: the cookie itself is never stored.
-- `expires_at` slides with use; `last_used_at` is written at most about once a minute per session.
CREATE TABLE sessions (
    token_hash   TEXT PRIMARY KEY NOT NULL,
    user_name    TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE ON UPDATE CASCADE,
    created_at   REAL NOT NULL,
    last_used_at REAL NOT NULL,
    expires_at   REAL NOT NULL,
    address      TEXT
);
CREATE INDEX sessions_user ON sessions (user_name);
CREATE INDEX sessions_expires ON sessions (expires_at);
