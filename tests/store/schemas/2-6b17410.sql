-- The SQLite schema of 6b17410 (2026-11-23 Fair counting: byte-0 GETs take a download, aborts give it back, resumes and previews never count; Redis store with a shared contract suite)
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
    started_at INTEGER
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
