//! The rows behind AWS call pacing shared by a fleet of replicas: per mount and API family,
//! the rate AWS's throttling taught (`aws_pace_fleet`), and each replica's slice of it
//! (`aws_pace_slices`). What the figures mean and how they are merged is the engine's
//! (`keymint_engine::pace`); this module reads and writes them in one transaction, so two
//! replicas reporting a throttle at once merge instead of overwriting each other.

use sqlx::Row;

use crate::{Backend, Result, Store};

/// The PostgreSQL notification channel on which an exchange that made a new cut names its
/// mount, so the other replicas exchange at once instead of at their next turn.
pub const CUT_CHANNEL: &str = "keymint_aws_pace_cut";

/// What AWS's throttling taught a family, as the fleet keeps it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Learned {
    /// The rate that was throttled, in calls per second.
    pub max: f64,
    /// When, in unix milliseconds.
    pub at_ms: i64,
    /// The rate in force when AWS throttled; `None`: nothing limited it.
    pub ceiling: Option<f64>,
}

/// A family's shared state: what was learned, and how many cuts there have been.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct FleetRate {
    pub learned: Option<Learned>,
    pub epoch: i64,
}

/// One replica's report for one family.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Slice {
    /// Calls asked for per second, plus calls queued.
    pub demand: f64,
    /// Calls queued.
    pub queued: f64,
    /// Calls AWS accepted from this replica in the last second.
    pub accepted: f64,
}

/// What the other replicas reported for a family.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Others {
    /// Replicas whose slices are live, and the sums of what they reported.
    pub replicas: i64,
    pub demand: f64,
    pub queued: f64,
    pub accepted: f64,
    /// Replicas whose slices lapsed within the last [`SLICE_GONE_MS`]: idle for now, and
    /// likely to make calls again.
    pub lapsed: i64,
}

/// A family after an exchange: the fleet's state (as merged) and the other replicas' slices.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Exchanged {
    pub rate: FleetRate,
    pub others: Others,
}

/// How long after its replica last reported a slice still counts.
pub const SLICE_TTL_MS: i64 = 3_000;
/// Slices of replicas not heard from for this long are forgotten (and deleted).
pub const SLICE_GONE_MS: i64 = 60_000;

/// What an exchange does besides reporting and merging.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upkeep {
    /// Nothing: the mount's rows exist, and stale slices were deleted not long ago.
    None,
    /// Creates the mount's family rows if missing (a replica's first exchange), and deletes
    /// the slices of replicas gone for a minute.
    Rows,
}

/// Reports `replica`'s slices of `mount_id`'s families (`(family, slice)`) at `now_ms`, and
/// merges the fleet's state of each family with `merge(family, stored, others)`, which returns
/// the state to store: when it differs from the stored one it is written, all under a row lock
/// on the mount's families. Returns, in the order given, each family's state as stored after
/// the merge and the other replicas' live slices. Four statements in one transaction, and one
/// more per family whose state changed.
pub async fn exchange(
    store: &Store,
    mount_id: &str,
    replica: &str,
    now_ms: i64,
    slices: &[(&str, Slice)],
    upkeep: Upkeep,
    mut merge: impl FnMut(&str, FleetRate, Others) -> FleetRate,
) -> Result<Vec<Exchanged>> {
    let mut tx = store.begin().await?;
    if upkeep == Upkeep::Rows {
        create_rows(&mut tx, mount_id, slices).await?;
        sqlx::query("DELETE FROM aws_pace_slices WHERE mount_id = $1 AND seen_at < $2")
            .bind(mount_id)
            .bind(now_ms - SLICE_GONE_MS)
            .execute(&mut *tx)
            .await?;
    }
    // The lock serialises the replicas' exchanges for this mount: a merge sees the last one.
    let lock = match store.backend() {
        crate::Backend::Postgres => " FOR UPDATE",
        crate::Backend::Sqlite => "",
    };
    let stored = sqlx::query(&format!(
        "SELECT family, learned_max, learned_at, learned_ceiling, epoch FROM aws_pace_fleet \
         WHERE mount_id = $1{lock}"
    ))
    .bind(mount_id)
    .fetch_all(&mut *tx)
    .await?;
    let others = sqlx::query(
        "SELECT family, \
         SUM(CASE WHEN seen_at > $3 THEN 1 ELSE 0 END) AS n, \
         SUM(CASE WHEN seen_at > $3 THEN demand ELSE 0.0 END) AS demand, \
         SUM(CASE WHEN seen_at > $3 THEN queued ELSE 0.0 END) AS queued, \
         SUM(CASE WHEN seen_at > $3 THEN accepted ELSE 0.0 END) AS accepted, \
         SUM(CASE WHEN seen_at > $3 THEN 0 ELSE 1 END) AS lapsed \
         FROM aws_pace_slices WHERE mount_id = $1 AND replica <> $2 AND seen_at > $4 GROUP BY family",
    )
    .bind(mount_id)
    .bind(replica)
    .bind(now_ms - SLICE_TTL_MS)
    .bind(now_ms - SLICE_GONE_MS)
    .fetch_all(&mut *tx)
    .await?;

    let mut out = Vec::with_capacity(slices.len());
    let mut stored_epochs = Vec::with_capacity(slices.len());
    let upsert = values_sql(
        "INSERT INTO aws_pace_slices (mount_id, family, replica, demand, queued, accepted, seen_at) VALUES",
        slices.len(),
        &["$1", "${}", "$2", "${}", "${}", "${}", "$3"],
        3,
        " ON CONFLICT (mount_id, family, replica) \
         DO UPDATE SET demand = excluded.demand, queued = excluded.queued, accepted = excluded.accepted, \
         seen_at = excluded.seen_at",
    );
    let mut upsert = sqlx::query(&upsert).bind(mount_id).bind(replica).bind(now_ms);
    for (family, slice) in slices {
        upsert = upsert.bind(*family).bind(slice.demand).bind(slice.queued).bind(slice.accepted);
    }
    for (family, _) in slices {
        let row = stored.iter().find(|r| r.try_get::<String, _>("family").is_ok_and(|f| f == *family));
        let current = match row {
            Some(r) => FleetRate {
                learned: match (
                    r.try_get::<Option<f64>, _>("learned_max")?,
                    r.try_get::<Option<i64>, _>("learned_at")?,
                ) {
                    (Some(max), Some(at_ms)) => {
                        Some(Learned { max, at_ms, ceiling: r.try_get::<Option<f64>, _>("learned_ceiling")? })
                    }
                    _ => None,
                },
                epoch: r.try_get("epoch")?,
            },
            None => FleetRate::default(),
        };
        let theirs =
            match others.iter().find(|r| r.try_get::<String, _>("family").is_ok_and(|f| f == *family)) {
                Some(r) => Others {
                    replicas: r.try_get::<Option<i64>, _>("n")?.unwrap_or(0),
                    demand: r.try_get::<Option<f64>, _>("demand")?.unwrap_or(0.0),
                    queued: r.try_get::<Option<f64>, _>("queued")?.unwrap_or(0.0),
                    accepted: r.try_get::<Option<f64>, _>("accepted")?.unwrap_or(0.0),
                    lapsed: r.try_get::<Option<i64>, _>("lapsed")?.unwrap_or(0),
                },
                None => Others::default(),
            };
        stored_epochs.push(current.epoch);
        let merged = merge(family, current, theirs);
        if merged != current {
            let learned = merged.learned;
            sqlx::query(
                "UPDATE aws_pace_fleet SET learned_max = $1, learned_at = $2, learned_ceiling = $3, epoch = $4 \
                 WHERE mount_id = $5 AND family = $6",
            )
            .bind(learned.map(|l| l.max))
            .bind(learned.map(|l| l.at_ms))
            .bind(learned.and_then(|l| l.ceiling))
            .bind(merged.epoch)
            .bind(mount_id)
            .bind(*family)
            .execute(&mut *tx)
            .await?;
        }
        out.push(Exchanged { rate: merged, others: theirs });
    }
    // Sent when the transaction commits, to every replica listening (this one included).
    if store.backend() == Backend::Postgres
        && out.iter().zip(&stored_epochs).any(|(e, was)| e.rate.epoch > *was)
    {
        sqlx::query("SELECT pg_notify($1, $2)").bind(CUT_CHANNEL).bind(mount_id).execute(&mut *tx).await?;
    }
    upsert.execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(out)
}

/// Creates the rows of `mount_id`'s families in `aws_pace_fleet` that do not exist yet.
async fn create_rows(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    mount_id: &str,
    slices: &[(&str, Slice)],
) -> Result<()> {
    let sql = values_sql(
        "INSERT INTO aws_pace_fleet (mount_id, family, epoch) VALUES",
        slices.len(),
        &["$1", "${}", "0"],
        1,
        " ON CONFLICT (mount_id, family) DO NOTHING",
    );
    let mut insert = sqlx::query(&sql).bind(mount_id);
    for (family, _) in slices {
        insert = insert.bind(*family);
    }
    insert.execute(&mut **tx).await?;
    Ok(())
}

/// `head`, then `rows` tuples of `columns`, then `tail`: in each tuple, the `${}` columns are
/// numbered on from `fixed` (the parameters shared by every row), `per_row` per row.
fn values_sql(head: &str, rows: usize, columns: &[&str], fixed: usize, tail: &str) -> String {
    let per_row = columns.iter().filter(|c| **c == "${}").count();
    let tuples: Vec<String> = (0..rows)
        .map(|row| {
            let mut next = fixed + row * per_row;
            let cells: Vec<String> = columns
                .iter()
                .map(|c| {
                    if *c == "${}" {
                        next += 1;
                        format!("${next}")
                    } else {
                        (*c).to_owned()
                    }
                })
                .collect();
            format!("({})", cells.join(", "))
        })
        .collect();
    format!("{head} {}{tail}", tuples.join(", "))
}

/// The cuts other replicas make, as they make them (PostgreSQL): a connection of its own,
/// outside the pool, listening on [`CUT_CHANNEL`].
pub struct CutListener(sqlx::postgres::PgListener);

impl CutListener {
    /// Starts listening; `None` on SQLite, where one process paces alone.
    pub async fn connect(store: &Store) -> Result<Option<CutListener>> {
        if store.backend() != Backend::Postgres {
            return Ok(None);
        }
        let mut listener = sqlx::postgres::PgListener::connect(store.url()).await?;
        listener.listen(CUT_CHANNEL).await?;
        Ok(Some(CutListener(listener)))
    }

    /// The mount of the next cut. A lost connection is made again at the next call (cuts sent
    /// meanwhile are missed: the replicas' regular exchanges still carry them).
    pub async fn next(&mut self) -> Result<String> {
        Ok(self.0.recv().await?.payload().to_owned())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn values_are_numbered_after_the_shared_parameters() {
        assert_eq!(
            super::values_sql(
                "INSERT INTO t (a, b, c, d) VALUES",
                2,
                &["$1", "${}", "$2", "${}"],
                2,
                " ON CONFLICT DO NOTHING"
            ),
            "INSERT INTO t (a, b, c, d) VALUES ($1, $3, $2, $4), ($1, $5, $2, $6) ON CONFLICT DO NOTHING"
        );
    }
}
