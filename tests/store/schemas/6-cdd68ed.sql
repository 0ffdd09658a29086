-- The SQLite schema of cdd68ed (2026-11-23 A speed cap per link: share(rate=...), sesame link --rate, the Share page's field and SESAME_DEFAULT_LINK_RATE; downloads are paced in quar)
-- taken from sesame/store/sqlite.py at that commit, as a database made then has it.
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
CREATE INDEX IF NOT EXISTS downloads_by_link ON downloads (link_id, at);
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
CREATE TABLE IF NOT EXISTS slots (
    id TEXT PRIMARY KEY,
    until INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS egress (
    day INTEGER PRIMARY KEY,
    bytes INTEGER NOT NULL
);
