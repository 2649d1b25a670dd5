//! Experiments, their readings and votes, and the learnings they leave.

use super::*;

/// A reading as read back: id, value, note, when (ms), recorder id and name.
type ReadingRow = (i64, f64, Option<String>, i64, Option<i64>, Option<String>);

/// The workspace's next `E-n`, as a statement (SQLite; Postgres does it inside one statement).
macro_rules! allocate_experiment_number {
    ($c:expr, $ws:expr) => {
        sqlx::query_scalar::<_, i64>(
            "UPDATE workspaces SET next_experiment_no = next_experiment_no + 1 WHERE id = $1 \
             RETURNING next_experiment_no - 1",
        )
        .bind($ws.0)
        .fetch_one(&mut *$c)
        .await?
    };
}

/// The proposal's event, as a statement of its own (SQLite).
macro_rules! log_proposal {
    ($c:expr, $ws:expr, $channel:expr, $owner:expr, $number:expr, $now:expr) => {
        sqlx::query(
            "INSERT INTO events (workspace_id, channel_id, actor_id, kind, subject, data, at) \
             VALUES ($1, $2, $3, 'experiment.proposed', $4, '{}', $5)",
        )
        .bind($ws.0)
        .bind($channel)
        .bind($owner)
        .bind(ExperimentRef($number).to_string())
        .bind(to_millis($now))
        .execute(&mut *$c)
        .await?
    };
}

impl Tx {
    // ----- experiments --------------------------------------------------------------------------

    /// Inserts a proposed experiment under the workspace's next `E-n` and logs its proposal, both in
    /// this transaction, so a rolled-back proposal leaves no gap and a committed number is never
    /// handed out again. On Postgres counter, row and event are one statement: the counter row stays
    /// locked until commit, so every round trip saved is time other proposals do not wait.
    pub async fn insert_experiment(
        &mut self,
        ws: WorkspaceId,
        new: &NewExperiment<'_>,
        now: DateTime<Utc>,
    ) -> Result<ExperimentRecord, StoreError> {
        const PG_INSERT: &str = "WITH allocated AS (UPDATE workspaces SET next_experiment_no = next_experiment_no + 1 \
             WHERE id = $1 RETURNING next_experiment_no - 1 AS number), \
             inserted AS (INSERT INTO experiments (workspace_id, number, channel_id, owner_id, title, hypothesis, \
             metric_name, metric_unit, baseline, target, status, review_on, created_at) \
             SELECT $1, number, $2, $3, $4, $5, $6, $7, $8, $9, 'proposed', $10, $11 FROM allocated RETURNING id, number), \
             logged AS (INSERT INTO events (workspace_id, channel_id, actor_id, kind, subject, data, at) \
             SELECT $1, $2, $3, 'experiment.proposed', 'E-' || number, '{}', $11 FROM inserted) \
             SELECT id, number FROM inserted";
        let (id, number): (i64, i64) = on_conn!(write self, |c, pg| {
            let number = if pg { None } else { Some(allocate_experiment_number!(c, ws)) };
            let query = sqlx::query_as(if pg { PG_INSERT } else { SQLITE_INSERT })
                .bind(ws.0)
                .bind(new.channel.0)
                .bind(new.owner.id.0)
                .bind(new.title)
                .bind(new.hypothesis)
                .bind(&new.metric.name)
                .bind(new.metric.unit.as_deref())
                .bind(new.metric.baseline)
                .bind(new.metric.target)
                .bind(new.review_on.map(day_text))
                .bind(to_millis(now));
            let query = match number {
                Some(number) => query.bind(number),
                None => query,
            };
            let row: (i64, i64) = query.fetch_one(&mut *c).await?;
            if !pg {
                log_proposal!(c, ws, new.channel.0, new.owner.id.0, row.1, now);
            }
            row
        });
        Ok(proposed(
            ExperimentId(id),
            ExperimentRef(number),
            new.channel,
            new.owner.id,
            &new.owner.external_id,
            &new.owner.display_name,
            new,
            now,
        ))
    }

    /// The whole proposal by the channel's and member's platform ids, for a proposal that needs
    /// nothing read first (no review date to resolve in anyone's time zone). `None` when the channel
    /// or the member is not known yet: then nothing was written. The member keeps the name nudge
    /// knows them by.
    /// On Postgres this is one statement, so it is atomic even in [`Store::autocommit`].
    pub async fn propose_by_platform_ids(
        &mut self,
        ws: WorkspaceId,
        channel_external_id: &str,
        member_external_id: &str,
        new: &NewExperiment<'_>,
        now: DateTime<Utc>,
    ) -> Result<Option<ExperimentRecord>, StoreError> {
        const PG_PROPOSE: &str = "WITH ch AS (SELECT id FROM channels WHERE workspace_id = $1 AND external_id = $2), \
             mem AS (SELECT id, display_name FROM members WHERE workspace_id = $1 AND external_id = $3), \
             allocated AS (UPDATE workspaces SET next_experiment_no = next_experiment_no + 1 \
             WHERE id = $1 AND EXISTS (SELECT 1 FROM ch) AND EXISTS (SELECT 1 FROM mem) \
             RETURNING next_experiment_no - 1 AS number), \
             inserted AS (INSERT INTO experiments (workspace_id, number, channel_id, owner_id, title, hypothesis, \
             metric_name, metric_unit, baseline, target, status, review_on, created_at) \
             SELECT $1, a.number, ch.id, mem.id, $4, $5, $6, $7, $8, $9, 'proposed', NULL, $10 \
             FROM allocated a, ch, mem RETURNING id, number, channel_id, owner_id), \
             logged AS (INSERT INTO events (workspace_id, channel_id, actor_id, kind, subject, data, at) \
             SELECT $1, channel_id, owner_id, 'experiment.proposed', 'E-' || number, '{}', $10 FROM inserted) \
             SELECT i.id, i.number, i.channel_id, i.owner_id, mem.display_name FROM inserted i, mem";
        let row: Option<(i64, i64, i64, i64, String)> = on_conn!(write self, |c, pg| {
            if pg {
                sqlx::query_as(PG_PROPOSE)
                    .bind(ws.0)
                    .bind(channel_external_id)
                    .bind(member_external_id)
                    .bind(new.title)
                    .bind(new.hypothesis)
                    .bind(&new.metric.name)
                    .bind(new.metric.unit.as_deref())
                    .bind(new.metric.baseline)
                    .bind(new.metric.target)
                    .bind(to_millis(now))
                    .fetch_optional(&mut *c)
                    .await?
            } else {
                let ids: Option<(i64, i64, String)> = sqlx::query_as(
                    "SELECT c.id, m.id, m.display_name FROM channels c JOIN members m ON m.workspace_id = c.workspace_id \
                     WHERE c.workspace_id = $1 AND c.external_id = $2 AND m.external_id = $3",
                )
                .bind(ws.0)
                .bind(channel_external_id)
                .bind(member_external_id)
                .fetch_optional(&mut *c)
                .await?;
                match ids {
                    None => None,
                    Some((channel, owner, stored_name)) => {
                        let number = allocate_experiment_number!(c, ws);
                        let (id, number): (i64, i64) = sqlx::query_as(SQLITE_INSERT)
                            .bind(ws.0)
                            .bind(channel)
                            .bind(owner)
                            .bind(new.title)
                            .bind(new.hypothesis)
                            .bind(&new.metric.name)
                            .bind(new.metric.unit.as_deref())
                            .bind(new.metric.baseline)
                            .bind(new.metric.target)
                            .bind(None::<String>)
                            .bind(to_millis(now))
                            .bind(number)
                            .fetch_one(&mut *c)
                            .await?;
                        log_proposal!(c, ws, channel, owner, number, now);
                        Some((id, number, channel, owner, stored_name))
                    }
                }
            }
        });
        Ok(row.map(|(id, number, channel, owner, stored_name)| {
            let name = stored_name.as_str();
            proposed(
                ExperimentId(id),
                ExperimentRef(number),
                ChannelId(channel),
                MemberId(owner),
                member_external_id,
                name,
                new,
                now,
            )
        }))
    }

    /// Several proposals of one workspace in one statement on Postgres (see
    /// [`Tx::propose_by_platform_ids`]), numbered in the order given. Each answer is `None` when that
    /// proposal's channel or member is not known yet; nothing was written for it.
    pub async fn propose_many(
        &mut self,
        ws: WorkspaceId,
        proposals: &[QuickProposal<'_>],
        now: DateTime<Utc>,
    ) -> Result<Vec<Option<ExperimentRecord>>, StoreError> {
        if proposals.is_empty() {
            return Ok(Vec::new());
        }
        if matches!(self.conn, TxConn::Sqlite(_)) {
            let mut answers = Vec::with_capacity(proposals.len());
            for p in proposals {
                answers.push(self.propose_by_platform_ids(ws, p.channel, p.member, &p.new, now).await?);
            }
            return Ok(answers);
        }
        const PG_PROPOSE_MANY: &str = "WITH input AS (SELECT * FROM UNNEST($2::text[], $3::text[], \
             $4::text[], $5::text[], $6::text[], $7::text[], $8::float8[], $9::float8[]) WITH ORDINALITY \
             AS t(channel_ext, member_ext, title, hypothesis, metric_name, metric_unit, baseline, target, n)), \
             resolved AS (SELECT i.*, c.id AS channel_id, m.id AS owner_id, m.display_name, \
             ROW_NUMBER() OVER (ORDER BY i.n) AS k FROM input i \
             JOIN channels c ON c.workspace_id = $1 AND c.external_id = i.channel_ext \
             JOIN members m ON m.workspace_id = $1 AND m.external_id = i.member_ext), \
             allocated AS (UPDATE workspaces SET next_experiment_no = next_experiment_no + (SELECT COUNT(*) FROM resolved) \
             WHERE id = $1 AND EXISTS (SELECT 1 FROM resolved) \
             RETURNING next_experiment_no - (SELECT COUNT(*) FROM resolved) AS first), \
             inserted AS (INSERT INTO experiments (workspace_id, number, channel_id, owner_id, title, hypothesis, \
             metric_name, metric_unit, baseline, target, status, review_on, created_at) \
             SELECT $1, a.first + r.k - 1, r.channel_id, r.owner_id, r.title, r.hypothesis, r.metric_name, r.metric_unit, \
             r.baseline, r.target, 'proposed', NULL, $10 FROM resolved r, allocated a RETURNING id, number), \
             logged AS (INSERT INTO events (workspace_id, channel_id, actor_id, kind, subject, data, at) \
             SELECT $1, r.channel_id, r.owner_id, 'experiment.proposed', 'E-' || (a.first + r.k - 1), '{}', $10 \
             FROM resolved r, allocated a) \
             SELECT r.n, i.id, i.number, r.channel_id, r.owner_id, r.display_name \
             FROM inserted i, allocated a, resolved r WHERE i.number = a.first + r.k - 1";
        let column = |f: fn(&QuickProposal<'_>) -> String| proposals.iter().map(f).collect::<Vec<String>>();
        let channels = column(|p| p.channel.to_string());
        let members = column(|p| p.member.to_string());
        let titles = column(|p| p.new.title.to_string());
        let hypotheses = column(|p| p.new.hypothesis.to_string());
        let metric_names = column(|p| p.new.metric.name.clone());
        let units: Vec<Option<String>> = proposals.iter().map(|p| p.new.metric.unit.clone()).collect();
        let baselines: Vec<f64> = proposals.iter().map(|p| p.new.metric.baseline).collect();
        let targets: Vec<f64> = proposals.iter().map(|p| p.new.metric.target).collect();
        let rows: Vec<(i64, i64, i64, i64, i64, String)> = on_postgres!(write self, |c| {
            sqlx::query_as(PG_PROPOSE_MANY)
                .bind(ws.0)
                .bind(&channels)
                .bind(&members)
                .bind(&titles)
                .bind(&hypotheses)
                .bind(&metric_names)
                .bind(&units)
                .bind(&baselines)
                .bind(&targets)
                .bind(to_millis(now))
                .fetch_all(&mut *c)
                .await?
        });
        let mut answers: Vec<Option<ExperimentRecord>> = proposals.iter().map(|_| None).collect();
        for (n, id, number, channel, owner, stored_name) in rows {
            let Some(p) = usize::try_from(n - 1).ok().and_then(|i| proposals.get(i)) else { continue };
            let name = stored_name.as_str();
            answers[(n - 1) as usize] = Some(proposed(
                ExperimentId(id),
                ExperimentRef(number),
                ChannelId(channel),
                MemberId(owner),
                p.member,
                name,
                &p.new,
                now,
            ));
        }
        Ok(answers)
    }

    pub async fn experiment(
        &mut self,
        ws: WorkspaceId,
        id: ExperimentRef,
    ) -> Result<Option<ExperimentRecord>, StoreError> {
        let row: Option<ExperimentRow> = on_conn!(self, |c, pg| {
            sqlx::query_as(cached_sql!("SELECT ", EXPERIMENT_COLUMNS, " WHERE e.workspace_id = $1 AND e.number = $2"))
                .bind(ws.0)
                .bind(id.0)
                .fetch_optional(&mut *c)
                .await?
        });
        row.map(ExperimentRow::into_record).transpose()
    }

    /// The channel's experiments with the given statuses, newest first; `limit` keeps replies short.
    pub async fn experiments_in_channel(
        &mut self,
        ws: WorkspaceId,
        channel: ChannelId,
        statuses: &[ExperimentStatus],
        limit: i64,
    ) -> Result<Vec<ExperimentRecord>, StoreError> {
        let words: Vec<&str> = statuses.iter().map(|s| s.as_str()).collect();
        let list = words.join(",");
        // Status words are matched inside a comma list, so one prepared statement serves any filter.
        let rows: Vec<ExperimentRow> = on_conn!(self, |c, pg| {
            sqlx::query_as(cached_sql!(
                "SELECT ",
                EXPERIMENT_COLUMNS,
                " WHERE e.workspace_id = $1 AND e.channel_id = $2 AND (',' || $3 || ',') LIKE ('%,' || e.status || ',%') \
                 ORDER BY e.number DESC LIMIT $4"
            ))
            .bind(ws.0)
            .bind(channel.0)
            .bind(&list)
            .bind(limit)
            .fetch_all(&mut *c)
            .await?
        });
        rows.into_iter().map(ExperimentRow::into_record).collect()
    }

    /// Moves an experiment from `from` to `to` only if it is still in `from`, so two people racing to
    /// start or close it cannot both succeed. Returns whether it moved.
    pub async fn transition_experiment(
        &mut self,
        ws: WorkspaceId,
        experiment: ExperimentId,
        from: ExperimentStatus,
        to: ExperimentStatus,
        learning: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let started_at = (to == ExperimentStatus::Running).then_some(to_millis(now));
        let closed_at = to.is_closed().then_some(to_millis(now));
        let result = on_conn!(write self, |c, pg| {
            sqlx::query(
                "UPDATE experiments SET status = $4, started_at = COALESCE($5, started_at), \
                 closed_at = COALESCE($6, closed_at), learning = COALESCE($7, learning) \
                 WHERE workspace_id = $1 AND id = $2 AND status = $3",
            )
            .bind(ws.0)
            .bind(experiment.0)
            .bind(from.as_str())
            .bind(to.as_str())
            .bind(started_at)
            .bind(closed_at)
            .bind(learning)
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        if result == 1 && to.is_closed() {
            // Nothing left to review once it is closed or abandoned.
            self.set_review_firing(ws, ChannelId(0), experiment, None).await?;
        }
        Ok(result == 1)
    }

    /// Records a reading; returns its number (what `/experiment readings` shows and deletes by).
    pub async fn insert_reading(
        &mut self,
        ws: WorkspaceId,
        experiment: ExperimentId,
        value: f64,
        note: Option<&str>,
        recorded_by: Option<MemberId>,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let source = if recorded_by.is_some() { "member" } else { "api" };
        let id: i64 = on_conn!(write self, |c, pg| {
            sqlx::query_scalar(
                "INSERT INTO readings (workspace_id, experiment_id, value, note, recorded_by, source, recorded_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            )
            .bind(ws.0)
            .bind(experiment.0)
            .bind(value)
            .bind(note)
            .bind(recorded_by.map(|m| m.0))
            .bind(source)
            .bind(to_millis(now))
            .fetch_one(&mut *c)
            .await?
        });
        Ok(id)
    }

    /// An experiment's readings, oldest first, with who recorded them.
    pub async fn readings(
        &mut self,
        ws: WorkspaceId,
        experiment: ExperimentId,
    ) -> Result<Vec<ReadingRecord>, StoreError> {
        let rows: Vec<ReadingRow> = on_conn!(self, |c, pg| {
            sqlx::query_as(
                "SELECT r.id, r.value, r.note, r.recorded_at, r.recorded_by, m.display_name FROM readings r \
                 LEFT JOIN members m ON m.id = r.recorded_by WHERE r.workspace_id = $1 AND r.experiment_id = $2 \
                 ORDER BY r.id",
            )
            .bind(ws.0)
            .bind(experiment.0)
            .fetch_all(&mut *c)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(id, value, note, at, by, name)| ReadingRecord {
                id,
                value,
                note,
                recorded_at: from_millis(at),
                recorded_by: by.map(MemberId),
                recorder_name: name,
            })
            .collect())
    }

    /// Deletes one of an experiment's readings; false when it has no such reading.
    pub async fn delete_reading(
        &mut self,
        ws: WorkspaceId,
        experiment: ExperimentId,
        reading: i64,
    ) -> Result<bool, StoreError> {
        let deleted = on_conn!(write self, |c, pg| {
            sqlx::query("DELETE FROM readings WHERE workspace_id = $1 AND experiment_id = $2 AND id = $3")
                .bind(ws.0)
                .bind(experiment.0)
                .bind(reading)
                .execute(&mut *c)
                .await?
                .rows_affected()
        });
        Ok(deleted == 1)
    }

    /// Changes what an experiment says about itself; `Edit::Review` also moves its review reminder
    /// (see [`Tx::set_review_firing`]). Returns whether it changed.
    pub async fn edit_experiment(
        &mut self,
        ws: WorkspaceId,
        experiment: ExperimentId,
        edit: &Edit<'_>,
    ) -> Result<bool, StoreError> {
        let sql = match edit {
            Edit::Title(_) => "UPDATE experiments SET title = $3 WHERE workspace_id = $1 AND id = $2",
            Edit::Hypothesis(_) => "UPDATE experiments SET hypothesis = $3 WHERE workspace_id = $1 AND id = $2",
            Edit::MetricName(_) => "UPDATE experiments SET metric_name = $3 WHERE workspace_id = $1 AND id = $2",
            Edit::Unit(_) => "UPDATE experiments SET metric_unit = $3 WHERE workspace_id = $1 AND id = $2",
            Edit::Target(_) => "UPDATE experiments SET target = $3 WHERE workspace_id = $1 AND id = $2",
            Edit::Review(_) => "UPDATE experiments SET review_on = $3 WHERE workspace_id = $1 AND id = $2",
        };
        let changed = on_conn!(write self, |c, pg| {
            let query = sqlx::query(sql).bind(ws.0).bind(experiment.0);
            let query = match edit {
                Edit::Title(text) | Edit::Hypothesis(text) | Edit::MetricName(text) => query.bind(*text),
                Edit::Unit(unit) => query.bind(*unit),
                Edit::Target(target) => query.bind(*target),
                Edit::Review(day) => query.bind(day.map(day_text)),
            };
            query.execute(&mut *c).await?.rows_affected()
        });
        Ok(changed == 1)
    }

    /// Records a member's vote; false when they had already voted for it.
    pub async fn add_vote(
        &mut self,
        ws: WorkspaceId,
        experiment: ExperimentId,
        member: MemberId,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let inserted = on_conn!(write self, |c, pg| {
            sqlx::query(
                "INSERT INTO votes (workspace_id, experiment_id, member_id, created_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (experiment_id, member_id) DO NOTHING",
            )
            .bind(ws.0)
            .bind(experiment.0)
            .bind(member.0)
            .bind(to_millis(now))
            .execute(&mut *c)
            .await?
            .rows_affected()
        });
        Ok(inserted == 1)
    }

    /// Closed experiments with a learning, newest first, that contain every one of `words` (any
    /// order, case-insensitive, in the title, hypothesis or learning).
    pub async fn learnings(
        &mut self,
        ws: WorkspaceId,
        words: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ExperimentRecord>, StoreError> {
        let words = search_words(words);
        let rows: Vec<ExperimentRow> = on_conn!(self, |c, pg| {
            let sql = if pg {
                cached_sql!("SELECT ", EXPERIMENT_COLUMNS, " WHERE ", PG_LEARNING_MATCHES, LEARNINGS_ORDER)
            } else {
                cached_sql!("SELECT ", EXPERIMENT_COLUMNS, " WHERE ", SQLITE_LEARNING_MATCHES, LEARNINGS_ORDER)
            };
            sqlx::query_as(sql).bind(ws.0).bind(&words).bind(limit).fetch_all(&mut *c).await?
        });
        rows.into_iter().map(ExperimentRow::into_record).collect()
    }

    /// How many learnings [`Tx::learnings`] would find without its limit.
    pub async fn count_learnings(&mut self, ws: WorkspaceId, words: Option<&str>) -> Result<i64, StoreError> {
        let words = search_words(words);
        let count: i64 = on_conn!(self, |c, pg| {
            let sql = if pg {
                cached_sql!("SELECT COUNT(*) FROM experiments e WHERE ", PG_LEARNING_MATCHES)
            } else {
                cached_sql!("SELECT COUNT(*) FROM experiments e WHERE ", SQLITE_LEARNING_MATCHES)
            };
            sqlx::query_scalar(sql).bind(ws.0).bind(&words).fetch_one(&mut *c).await?
        });
        Ok(count)
    }

    /// One page of the channel's experiments with the given statuses: running and closed ones newest
    /// first, then the backlog (proposed ones) by votes, most first; and how many there are in all.
    pub async fn experiment_page(
        &mut self,
        ws: WorkspaceId,
        channel: ChannelId,
        statuses: &[ExperimentStatus],
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<ExperimentRecord>, i64), StoreError> {
        let words: Vec<&str> = statuses.iter().map(|s| s.as_str()).collect();
        let list = words.join(",");
        let (rows, total): (Vec<ExperimentRow>, i64) = on_conn!(self, |c, pg| {
            let rows = sqlx::query_as(cached_sql!(
                "SELECT ",
                EXPERIMENT_COLUMNS,
                " WHERE e.workspace_id = $1 AND e.channel_id = $2 AND (',' || $3 || ',') LIKE ('%,' || e.status || ',%') \
                 ORDER BY CASE WHEN e.status = 'proposed' THEN 1 ELSE 0 END, \
                 CASE WHEN e.status = 'proposed' THEN (SELECT COUNT(*) FROM votes v WHERE v.experiment_id = e.id) END DESC, \
                 CASE WHEN e.status = 'proposed' THEN e.number ELSE -e.number END \
                 LIMIT $4 OFFSET $5"
            ))
            .bind(ws.0)
            .bind(channel.0)
            .bind(&list)
            .bind(limit)
            .bind(offset)
            .fetch_all(&mut *c)
            .await?;
            let total = sqlx::query_scalar(
                "SELECT COUNT(*) FROM experiments e WHERE e.workspace_id = $1 AND e.channel_id = $2 \
                 AND (',' || $3 || ',') LIKE ('%,' || e.status || ',%')",
            )
            .bind(ws.0)
            .bind(channel.0)
            .bind(&list)
            .fetch_one(&mut *c)
            .await?;
            (rows, total)
        });
        Ok((rows.into_iter().map(ExperimentRow::into_record).collect::<Result<_, _>>()?, total))
    }
}

/// A learning that holds every search word (`$2`, a JSON array of escaped, lower-case words; an
/// empty array matches every learning). The two backends read JSON arrays differently.
const PG_LEARNING_MATCHES: &str = "e.workspace_id = $1 AND e.learning IS NOT NULL AND NOT EXISTS \
     (SELECT 1 FROM jsonb_array_elements_text($2::jsonb) AS w(word) \
     WHERE LOWER(e.learning || ' ' || e.title || ' ' || e.hypothesis) NOT LIKE '%' || w.word || '%' ESCAPE '\\')";
const SQLITE_LEARNING_MATCHES: &str = "e.workspace_id = $1 AND e.learning IS NOT NULL AND NOT EXISTS \
     (SELECT 1 FROM json_each($2) AS w \
     WHERE LOWER(e.learning || ' ' || e.title || ' ' || e.hypothesis) NOT LIKE '%' || w.value || '%' ESCAPE '\\')";
const LEARNINGS_ORDER: &str = " ORDER BY e.closed_at DESC, e.number DESC LIMIT $3";

/// The search words as the JSON array the learning queries take: each lower-cased and escaped
/// for `LIKE`, so "100%" matches a percent sign.
fn search_words(words: Option<&str>) -> String {
    let words: Vec<String> =
        words.unwrap_or_default().split_whitespace().map(|w| escape_like(&w.to_lowercase())).collect();
    serde_json::to_string(&words).unwrap_or_else(|_| "[]".into())
}

/// Escapes `%`, `_` and the escape character itself, so a search word matches literally.
fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        if matches!(ch, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

const SQLITE_INSERT: &str = "INSERT INTO experiments (workspace_id, number, channel_id, owner_id, title, \
     hypothesis, metric_name, metric_unit, baseline, target, status, review_on, created_at) \
     VALUES ($1, $12, $2, $3, $4, $5, $6, $7, $8, $9, 'proposed', $10, $11) RETURNING id, number";

/// The record of an experiment just proposed, from what was inserted.
#[allow(clippy::too_many_arguments)]
fn proposed(
    id: ExperimentId,
    number: ExperimentRef,
    channel_id: ChannelId,
    owner_id: MemberId,
    owner_external_id: &str,
    owner_name: &str,
    new: &NewExperiment<'_>,
    now: DateTime<Utc>,
) -> ExperimentRecord {
    ExperimentRecord {
        id,
        number,
        channel_id,
        owner_id,
        owner_external_id: owner_external_id.to_string(),
        owner_name: owner_name.to_string(),
        title: new.title.to_string(),
        hypothesis: new.hypothesis.to_string(),
        metric: new.metric.clone(),
        status: ExperimentStatus::Proposed,
        review_on: new.review_on,
        learning: None,
        created_at: from_millis(to_millis(now)),
        started_at: None,
        closed_at: None,
        votes: 0,
        latest: None,
    }
}
