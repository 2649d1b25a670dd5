-- Slack: installed workspaces' bot tokens (sealed with AES-GCM, never stored in clear), event
-- deliveries seen (so Slack's retries have no second effect), and OAuth install states (CSRF).

ALTER TABLE workspaces ADD COLUMN bot_token_sealed TEXT;
ALTER TABLE workspaces ADD COLUMN bot_user_id TEXT;
ALTER TABLE workspaces ADD COLUMN installed_at BIGINT;

CREATE TABLE processed_events (
    platform            TEXT NOT NULL,
    event_id            TEXT NOT NULL,
    team_id             TEXT NOT NULL,
    received_at         BIGINT NOT NULL,
    PRIMARY KEY (platform, event_id)
);

-- Single use: consumed (deleted) by the callback, and only valid until expires_at.
CREATE TABLE oauth_states (
    state               TEXT PRIMARY KEY,
    platform            TEXT NOT NULL,
    expires_at          BIGINT NOT NULL
);
