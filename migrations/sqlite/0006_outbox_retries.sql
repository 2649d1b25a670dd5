-- Retries spread over time, and channels nudge has not been invited to.
--
-- When a post was first tried: a post that keeps failing is given up only after its attempts and
-- an hour since this instant, so a few minutes of outage cannot kill it. Posts already tried count
-- from when they were owed.
ALTER TABLE outbound_messages ADD COLUMN first_attempt_at BIGINT;
UPDATE outbound_messages SET first_attempt_at = created_at WHERE attempts > 0;

-- Since when the platform has refused posts to a channel because nudge is not a member of it;
-- cleared when a post there goes out again. The member who last used nudge there is told once,
-- when it becomes set, whichever replica saw the refusal.
ALTER TABLE channels ADD COLUMN unreachable_since BIGINT;
