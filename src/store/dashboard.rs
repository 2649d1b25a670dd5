//! What the web dashboard reads: a channel's pledges of every status, and the keys its links are
//! signed with.

use super::*;

impl Tx {
    /// Makes the signing key `name` when there is none (32 random bytes, hex); safe from several
    /// replicas at once.
    pub async fn ensure_server_key(&mut self, name: &str, fresh: &str) -> Result<(), StoreError> {
        on_conn!(write self, |c, pg| {
            sqlx::query("INSERT INTO server_keys (name, secret) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(name)
                .bind(fresh)
                .execute(&mut *c)
                .await?;
        });
        Ok(())
    }

    /// The signing key `name`, hex, once [`Tx::ensure_server_key`] has made it.
    pub async fn server_key(&mut self, name: &str) -> Result<Option<String>, StoreError> {
        let key: Option<String> = on_conn!(self, |c, pg| {
            sqlx::query_scalar("SELECT secret FROM server_keys WHERE name = $1")
                .bind(name)
                .fetch_optional(&mut *c)
                .await?
        });
        Ok(key)
    }

    /// The channel's pledges of every status, newest first.
    pub async fn pledges_in_channel(
        &mut self,
        ws: WorkspaceId,
        channel: ChannelId,
        limit: i64,
    ) -> Result<Vec<PledgeRecord>, StoreError> {
        let rows: Vec<PledgeRow> = on_conn!(self, |c, pg| {
            sqlx::query_as(cached_sql!(
                "SELECT ",
                PLEDGE_COLUMNS,
                " WHERE p.workspace_id = $1 AND p.channel_id = $2 ORDER BY p.number DESC LIMIT $3"
            ))
            .bind(ws.0)
            .bind(channel.0)
            .bind(limit)
            .fetch_all(&mut *c)
            .await?
        });
        rows.into_iter().map(PledgeRow::into_record).collect()
    }
}
