-- One row that `/readyz` rewrites: a database that answers reads but cannot take writes (a full
-- disk, a read-only file or replica) is not ready, and only a write finds that out.
CREATE TABLE readiness_probe (
    id INTEGER PRIMARY KEY,
    checked_at BIGINT NOT NULL
);
INSERT INTO readiness_probe (id, checked_at) VALUES (1, 0);
