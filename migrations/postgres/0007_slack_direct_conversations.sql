-- Slack: before nudge knew direct conversations, a button pressed in one registered it as a
-- channel ("directmessage"), which then got check-ins, and took events from the team's channel.
-- Repaired here: each event goes back to its experiment's or pledge's own channel, the
-- conversation's firings and unsent channel posts go, and the row itself goes unless it owns
-- experiments or pledges (then it is marked 'direct' and gets no check-ins). Safe to run again.
UPDATE events SET channel_id = (
        SELECT p.channel_id FROM pledges p
        WHERE p.workspace_id = events.workspace_id AND 'P-' || p.number = events.subject)
    WHERE subject LIKE 'P-%' AND channel_id IN (
        SELECT c.id FROM channels c JOIN workspaces w ON w.id = c.workspace_id
        WHERE w.platform = 'slack' AND (c.external_id LIKE 'D%' OR c.name = 'directmessage'));
UPDATE events SET channel_id = (
        SELECT e.channel_id FROM experiments e
        WHERE e.workspace_id = events.workspace_id AND 'E-' || e.number = events.subject)
    WHERE subject LIKE 'E-%' AND channel_id IN (
        SELECT c.id FROM channels c JOIN workspaces w ON w.id = c.workspace_id
        WHERE w.platform = 'slack' AND (c.external_id LIKE 'D%' OR c.name = 'directmessage'));
DELETE FROM next_firings WHERE channel_id IN (
    SELECT c.id FROM channels c JOIN workspaces w ON w.id = c.workspace_id
    WHERE w.platform = 'slack' AND (c.external_id LIKE 'D%' OR c.name = 'directmessage'));
UPDATE outbound_messages SET status = 'dead', last_error = 'a direct conversation is not a team channel'
    WHERE member_id IS NULL AND status IN ('pending', 'sending') AND channel_id IN (
        SELECT c.id FROM channels c JOIN workspaces w ON w.id = c.workspace_id
        WHERE w.platform = 'slack' AND (c.external_id LIKE 'D%' OR c.name = 'directmessage'));
UPDATE channels SET kind = 'direct' WHERE id IN (
    SELECT c.id FROM channels c JOIN workspaces w ON w.id = c.workspace_id
    WHERE w.platform = 'slack' AND (c.external_id LIKE 'D%' OR c.name = 'directmessage'));
DELETE FROM occurrences WHERE channel_id IN (SELECT id FROM channels WHERE kind = 'direct');
DELETE FROM channels WHERE kind = 'direct'
    AND NOT EXISTS (SELECT 1 FROM experiments e WHERE e.channel_id = channels.id)
    AND NOT EXISTS (SELECT 1 FROM pledges p WHERE p.channel_id = channels.id)
    AND NOT EXISTS (SELECT 1 FROM outbound_messages o WHERE o.channel_id = channels.id)
    AND NOT EXISTS (SELECT 1 FROM events v WHERE v.channel_id = channels.id);
