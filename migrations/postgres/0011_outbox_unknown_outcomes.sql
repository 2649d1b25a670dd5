-- A post whose answer was lost (a timeout, a reset, a 5xx after it may have landed) is looked up on
-- the platform before it is tried again, like a post left "sending" by a crash: this is when that
-- attempt began, so the look-up searches the right few seconds of the channel. NULL otherwise.
ALTER TABLE outbound_messages ADD COLUMN unknown_outcome_at BIGINT;
