-- The platform-neutral core.
--
-- Outbox rows carry their platform and a typed recipient: the channel they belong to, and the member
-- when the post goes to one person privately. `recipient` becomes the typed key ('channel:12',
-- 'member:7'), which is also the pacing key; platform ids are looked up at delivery.
ALTER TABLE outbound_messages ADD COLUMN platform TEXT NOT NULL DEFAULT '';
ALTER TABLE outbound_messages ADD COLUMN member_id BIGINT REFERENCES members (id);
UPDATE outbound_messages o SET platform = w.platform FROM workspaces w WHERE w.id = o.workspace_id;
UPDATE outbound_messages o SET member_id = m.id FROM members m
    WHERE m.workspace_id = o.workspace_id AND m.external_id = o.recipient
    AND NOT EXISTS (SELECT 1 FROM channels c WHERE c.id = o.channel_id AND c.external_id = o.recipient);
-- A post with neither channel nor member cannot be addressed any more; operators see it as dead.
UPDATE outbound_messages SET status = 'dead', last_error = 'no recipient to address'
    WHERE channel_id IS NULL AND member_id IS NULL AND status IN ('pending', 'sending');
UPDATE outbound_messages SET recipient = CASE WHEN member_id IS NOT NULL THEN 'member:' || member_id
    ELSE 'channel:' || COALESCE(channel_id, 0) END;
DELETE FROM delivery_pacing;
INSERT INTO delivery_pacing (workspace_id, recipient, next_allowed_at)
    SELECT DISTINCT workspace_id, recipient, 0 FROM outbound_messages;
CREATE INDEX outbound_messages_sending ON outbound_messages (status, claimed_at);

-- Each channel's next firing per job (checkin, digest, celebrations, and 'pledge:<id>' for each open
-- pledge's next reminder stage). A tick reads only the rows that are due, through the index.
CREATE TABLE next_firings (
    channel_id          BIGINT NOT NULL REFERENCES channels (id),
    job                 TEXT NOT NULL,
    workspace_id        BIGINT NOT NULL REFERENCES workspaces (id),
    pledge_id           BIGINT REFERENCES pledges (id),
    due_at              BIGINT NOT NULL,
    PRIMARY KEY (channel_id, job)
);
CREATE INDEX next_firings_due ON next_firings (due_at);

-- What a platform keeps about a workspace's channels and members that the core has no column for
-- (a Teams conversation reference, a direct-message channel id), as text by kind and key, so a
-- platform needs no table of its own and no query outside its folder.
CREATE TABLE platform_records (
    workspace_id        BIGINT NOT NULL REFERENCES workspaces (id),
    platform            TEXT NOT NULL,
    kind                TEXT NOT NULL,
    key                 TEXT NOT NULL,
    value               TEXT NOT NULL,
    updated_at          BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, platform, kind, key)
);
