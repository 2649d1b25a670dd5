-- nudge's first schema. Instants are unix milliseconds (BIGINT) and calendar days are ISO text
-- ('2026-12-01'), so both backends store and compare them identically.

CREATE TABLE workspaces (
    id                  BIGSERIAL PRIMARY KEY,
    platform            TEXT NOT NULL,              -- slack | teams | mattermost
    external_id         TEXT NOT NULL,              -- Slack team id, Teams tenant id, …
    name                TEXT NOT NULL DEFAULT '',
    -- Short ids are allocated from these counters inside the transaction that inserts the row.
    next_experiment_no  BIGINT NOT NULL DEFAULT 1,
    next_pledge_no      BIGINT NOT NULL DEFAULT 1,
    created_at          BIGINT NOT NULL,
    UNIQUE (platform, external_id)
);

CREATE TABLE channels (
    id                  BIGSERIAL PRIMARY KEY,
    workspace_id        BIGINT NOT NULL REFERENCES workspaces (id),
    external_id         TEXT NOT NULL,
    name                TEXT NOT NULL DEFAULT '',
    schedule            TEXT NOT NULL,              -- normalized 5-field cron, local time
    time_zone           TEXT NOT NULL,              -- IANA name
    quiet_weekdays      TEXT NOT NULL DEFAULT '',   -- 'sat,sun'
    holidays            TEXT NOT NULL DEFAULT '',   -- '2026-12-24,2026-12-25'
    paused_until        TEXT,                       -- first day posts resume
    rules               TEXT NOT NULL DEFAULT '',
    escalate_after_days INTEGER NOT NULL,
    created_at          BIGINT NOT NULL,
    UNIQUE (workspace_id, external_id)
);

CREATE TABLE members (
    id                  BIGSERIAL PRIMARY KEY,
    workspace_id        BIGINT NOT NULL REFERENCES workspaces (id),
    external_id         TEXT NOT NULL,
    display_name        TEXT NOT NULL DEFAULT '',
    time_zone           TEXT,
    created_at          BIGINT NOT NULL,
    UNIQUE (workspace_id, external_id)
);

CREATE TABLE experiments (
    id                  BIGSERIAL PRIMARY KEY,
    workspace_id        BIGINT NOT NULL REFERENCES workspaces (id),
    number              BIGINT NOT NULL,            -- shown as E-<number>
    channel_id          BIGINT NOT NULL REFERENCES channels (id),
    owner_id            BIGINT NOT NULL REFERENCES members (id),
    title               TEXT NOT NULL,
    hypothesis          TEXT NOT NULL,
    metric_name         TEXT NOT NULL,
    metric_unit         TEXT,
    baseline            DOUBLE PRECISION NOT NULL,
    target              DOUBLE PRECISION NOT NULL,
    status              TEXT NOT NULL,              -- proposed | running | won | lost | inconclusive | abandoned
    dimensions          TEXT NOT NULL DEFAULT '',
    review_on           TEXT,
    learning            TEXT,
    created_at          BIGINT NOT NULL,
    started_at          BIGINT,
    closed_at           BIGINT,
    UNIQUE (workspace_id, number)
);
CREATE INDEX experiments_by_channel_status ON experiments (workspace_id, channel_id, status);

CREATE TABLE readings (
    id                  BIGSERIAL PRIMARY KEY,
    workspace_id        BIGINT NOT NULL REFERENCES workspaces (id),
    experiment_id       BIGINT NOT NULL REFERENCES experiments (id),
    value               DOUBLE PRECISION NOT NULL,
    note                TEXT,
    recorded_by         BIGINT REFERENCES members (id),  -- NULL when pushed through the API
    source              TEXT NOT NULL,                   -- member | api
    recorded_at         BIGINT NOT NULL
);
CREATE INDEX readings_by_experiment ON readings (experiment_id, id);

CREATE TABLE pledges (
    id                  BIGSERIAL PRIMARY KEY,
    workspace_id        BIGINT NOT NULL REFERENCES workspaces (id),
    number              BIGINT NOT NULL,            -- shown as P-<number>
    channel_id          BIGINT NOT NULL REFERENCES channels (id),
    owner_id            BIGINT NOT NULL REFERENCES members (id),
    text                TEXT NOT NULL,
    due_on              TEXT NOT NULL,
    experiment_id       BIGINT REFERENCES experiments (id),
    status              TEXT NOT NULL,              -- open | kept | released | broken
    note                TEXT,
    created_at          BIGINT NOT NULL,
    resolved_at         BIGINT,
    UNIQUE (workspace_id, number)
);
CREATE INDEX pledges_by_owner_status ON pledges (workspace_id, owner_id, status);
CREATE INDEX pledges_by_channel_status ON pledges (workspace_id, channel_id, status);

CREATE TABLE votes (
    workspace_id        BIGINT NOT NULL REFERENCES workspaces (id),
    experiment_id       BIGINT NOT NULL REFERENCES experiments (id),
    member_id           BIGINT NOT NULL REFERENCES members (id),
    created_at          BIGINT NOT NULL,
    PRIMARY KEY (experiment_id, member_id)
);

-- One firing of one scheduled job for one channel: the unique key makes replicas fire it once.
CREATE TABLE occurrences (
    id                  BIGSERIAL PRIMARY KEY,
    workspace_id        BIGINT NOT NULL REFERENCES workspaces (id),
    channel_id          BIGINT NOT NULL REFERENCES channels (id),
    job                 TEXT NOT NULL,
    due_at              BIGINT NOT NULL,
    outcome             TEXT NOT NULL,              -- fired | suppressed | skipped
    reason              TEXT,
    created_at          BIGINT NOT NULL,
    UNIQUE (channel_id, job, due_at)
);

-- Every post the bot owes: the neutral message as JSON, delivered by the sender.
CREATE TABLE outbound_messages (
    id                  BIGSERIAL PRIMARY KEY,
    workspace_id        BIGINT NOT NULL REFERENCES workspaces (id),
    channel_id          BIGINT REFERENCES channels (id),
    recipient           TEXT NOT NULL,              -- platform channel or user id
    idempotency_key     TEXT NOT NULL UNIQUE,
    message             TEXT NOT NULL,
    status              TEXT NOT NULL,              -- pending | sending | sent | dead
    attempts            INTEGER NOT NULL DEFAULT 0,
    next_attempt_at     BIGINT NOT NULL,
    platform_message_id TEXT,
    last_error          TEXT,
    created_at          BIGINT NOT NULL,
    sent_at             BIGINT
);
CREATE INDEX outbound_messages_due ON outbound_messages (status, next_attempt_at);

-- Append-only: every change, from which the digest, scoreboard and exports are computed.
CREATE TABLE events (
    id                  BIGSERIAL PRIMARY KEY,
    workspace_id        BIGINT NOT NULL REFERENCES workspaces (id),
    channel_id          BIGINT REFERENCES channels (id),
    actor_id            BIGINT REFERENCES members (id),
    kind                TEXT NOT NULL,
    subject             TEXT,                       -- E-3, P-4
    data                TEXT NOT NULL DEFAULT '{}',
    at                  BIGINT NOT NULL
);
CREATE INDEX events_by_channel_time ON events (workspace_id, channel_id, at);
