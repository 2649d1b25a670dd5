-- The outbox's delivery bookkeeping: when a row was claimed (a row left "sending" by a crash is
-- reconciled after a while), and per recipient when the next post may go (one per second per
-- channel, longer after a 429), shared by every replica.

ALTER TABLE outbound_messages ADD COLUMN claimed_at BIGINT;

CREATE TABLE delivery_pacing (
    workspace_id        BIGINT NOT NULL REFERENCES workspaces (id),
    recipient           TEXT NOT NULL,
    next_allowed_at     BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, recipient)
);
