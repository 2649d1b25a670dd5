-- What a two-week trial asked of the core.
--
-- A direct conversation with nudge is never a team channel. Rows a direct conversation left as a
-- channel before (see the Slack repair migration) are kept only when they own experiments or
-- pledges, marked 'direct', and get no check-ins.
ALTER TABLE channels ADD COLUMN kind TEXT NOT NULL DEFAULT 'team';

-- The newest event whose win has been celebrated: each win is celebrated once, whatever changes
-- to the schedule or the time zone make the batches fire.
ALTER TABLE channels ADD COLUMN celebrated_through BIGINT NOT NULL DEFAULT 0;

-- An experiment's review reminder is a next firing of its own ('review:<experiment id>').
ALTER TABLE next_firings ADD COLUMN experiment_id BIGINT REFERENCES experiments (id);
