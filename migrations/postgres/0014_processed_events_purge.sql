-- Deliveries are remembered only as long as a platform may deliver the same one again (Slack
-- retries within the hour); older rows are purged as new ones come, through this index.
CREATE INDEX processed_events_received ON processed_events (received_at);
