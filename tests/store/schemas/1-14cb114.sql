-- The SQLite schema of 14cb114 (2026-11-23 Core library, gateway and CLI: signed links with their own lifetime, safe catalog, SQLite store)
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
    downloads INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS downloads (
    id INTEGER PRIMARY KEY,
    link_id TEXT NOT NULL,
    at REAL NOT NULL,
    client_ip TEXT,
    user_agent TEXT,
    status INTEGER NOT NULL,
    bytes_sent INTEGER NOT NULL,
    outcome TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS downloads_by_link ON downloads (link_id, at);
CREATE INDEX IF NOT EXISTS downloads_by_time ON downloads (at);
