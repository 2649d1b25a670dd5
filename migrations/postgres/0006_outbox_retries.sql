-- Retries spread over time.
--
-- When a post was first tried: a post that keeps failing is given up only after its attempts and
-- an hour since this instant, so a few minutes of outage cannot kill it. Posts already tried count
-- from when they were owed.
ALTER TABLE outbound_messages ADD COLUMN first_attempt_at BIGINT;
UPDATE outbound_messages SET first_attempt_at = created_at WHERE attempts > 0;
