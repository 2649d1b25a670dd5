-- Each win is celebrated once: a channel's batches now celebrate what happened after
-- `celebrated_through` (see 0005) instead of "the day before the batch". Channels that had
-- batches before start from their last batch that went out, so nothing is celebrated twice and
-- nothing since is lost.
UPDATE channels SET celebrated_through = COALESCE(
        (SELECT MAX(o.due_at) FROM occurrences o
         WHERE o.channel_id = channels.id AND o.job = 'celebrations' AND o.outcome = 'fired'), 0)
    WHERE celebrated_through = 0;
