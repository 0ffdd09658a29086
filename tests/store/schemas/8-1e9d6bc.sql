-- The SQLite schema of 1e9d6bc (2026-12-02, version 3: leases and sessions; the last before
-- the log's sums), taken from sesame/store/sqlite.py at that commit, as a database made then has it.
CREATE TABLE IF NOT EXISTS links (
    id TEXT PRIMARY KEY,
    file TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    max_downloads INTEGER,
    recipient TEXT,
    note TEXT,
    revoked_at INTEGER,
    downloads INTEGER NOT NULL DEFAULT 0,
    bytes_served INTEGER NOT NULL DEFAULT 0,
    started_at INTEGER,
    landing INTEGER NOT NULL DEFAULT 0,
    rate INTEGER
);
CREATE TABLE IF NOT EXISTS downloads (
    id INTEGER PRIMARY KEY,
    link_id TEXT NOT NULL,
    at REAL NOT NULL,
    client_ip TEXT,
    user_agent TEXT,
    status INTEGER NOT NULL,
    bytes_sent INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    counted INTEGER NOT NULL DEFAULT 0
);
-- Rows are listed in the order they were written (their id), as in Redis. By link and
-- outcome for the Links page's counts, by time for the Activity page's periods.
CREATE INDEX IF NOT EXISTS downloads_by_link ON downloads (link_id, outcome);
CREATE INDEX IF NOT EXISTS downloads_by_time ON downloads (at);
CREATE TABLE IF NOT EXISTS rules (
    key TEXT PRIMARY KEY,
    keyword TEXT NOT NULL,
    file TEXT NOT NULL,
    lifetime INTEGER NOT NULL,
    max_downloads INTEGER,
    cooldown INTEGER NOT NULL,
    template TEXT,
    landing INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS issues (
    scope TEXT NOT NULL,
    recipient TEXT NOT NULL,
    link_id TEXT NOT NULL,
    issued_at INTEGER NOT NULL,
    PRIMARY KEY (scope, recipient)
);
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    digest TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER,
    last_used_at INTEGER
);
-- Downloads in flight. A lease keeps what settling its download needs, so that one whose
-- gateway died is settled by another when it lapses (the row is logged as aborted).
CREATE TABLE IF NOT EXISTS leases (
    id TEXT PRIMARY KEY,
    until INTEGER NOT NULL,
    link_id TEXT NOT NULL,
    counted INTEGER NOT NULL,
    reserved INTEGER NOT NULL,
    day INTEGER NOT NULL,
    sent INTEGER NOT NULL DEFAULT 0,
    row TEXT NOT NULL,
    session TEXT NOT NULL DEFAULT '',
    delivered INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS leases_by_until ON leases (until);
CREATE INDEX IF NOT EXISTS leases_by_session ON leases (session);
-- Sessions whose counted download arrived lately: a piece of theirs begun soon after joins it.
CREATE TABLE IF NOT EXISTS sessions (
    session TEXT PRIMARY KEY,
    until INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS egress (
    day INTEGER PRIMARY KEY,
    bytes INTEGER NOT NULL
);
