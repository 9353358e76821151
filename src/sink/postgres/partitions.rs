//! Monthly partitions of `sensor_readings`: which months exist, creating them ahead of
//! time and on demand, and dropping whole old ones (retention).
//!
//! A partition is created as a plain table and then attached: `ATTACH PARTITION` takes
//! only a SHARE UPDATE EXCLUSIVE lock on the parent, which does not conflict with the
//! ROW EXCLUSIVE lock of loads in progress (`CREATE TABLE … PARTITION OF` takes ACCESS
//! EXCLUSIVE and would wait for every running COPY, and hold every new load behind it).
//! Each month is created in its own short transaction under an advisory lock on that
//! month, on a connection of its own, so two agents needing the same month create it
//! once, and the load waiting for it keeps its transaction open. A lock timeout bounds
//! every wait: a creation that cannot get its locks fails the load as transient.

use chrono::{DateTime, Datelike, TimeZone, Utc};
use sqlx::{AssertSqlSafe, Connection, PgConnection, Row};
use std::collections::BTreeSet;
use tracing::{info, warn};

use super::{PgStore, err};
use crate::sink::Retention;
use crate::sink::{ErrorClass, SinkError};

/// Months created before they are needed: from the previous month to this many ahead.
pub const MONTHS_AHEAD: i32 = 3;

/// The name of a partition is this prefix and the month, `sensor_readings_p202403`.
const PREFIX: &str = "sensor_readings_p";

/// Advisory-lock class (first key of the two-key form) for creating one month; the
/// month is the second key.
const MONTH_LOCK: i32 = 0x5e_4514;

/// Session advisory lock taken by the one agent running retention at a time.
const RETENTION_LOCK: i64 = 0x5e_4514_0de1;

/// Creating or dropping a partition waits this long for a lock, then gives up.
const SET_LOCK_TIMEOUT: &str = "SET LOCAL lock_timeout = '5s'";

/// A calendar month in UTC, as months since the year 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month(i32);

impl Month {
    /// The month `ts` falls in.
    pub fn of(ts: DateTime<Utc>) -> Self {
        Month(ts.year() * 12 + ts.month0() as i32)
    }

    pub fn year(self) -> i32 {
        self.0.div_euclid(12)
    }

    /// 1 to 12.
    pub fn number(self) -> u32 {
        self.0.rem_euclid(12) as u32 + 1
    }

    pub fn next(self) -> Self {
        Month(self.0 + 1)
    }

    pub fn offset(self, months: i32) -> Self {
        Month(self.0 + months)
    }

    /// Its first instant, midnight UTC on the 1st.
    pub fn start(self) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(self.year(), self.number(), 1, 0, 0, 0)
            .single()
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// Its first instant as PostgreSQL reads it, `'2024-03-01 00:00:00+00'` (RFC 3339
    /// writes the year 10000 as `+10000`, which PostgreSQL refuses).
    pub fn bound(self) -> String {
        format!("'{:04}-{:02}-01 00:00:00+00'", self.year(), self.number())
    }

    /// The partition's table name, `sensor_readings_p202403`.
    pub fn table(self) -> String {
        format!("{PREFIX}{:04}{:02}", self.year(), self.number())
    }

    /// The month of a partition name this module gave, or `None` for any other name.
    pub fn of_table(name: &str) -> Option<Self> {
        let digits = name.strip_prefix(PREFIX)?;
        if !(6..=7).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let (year, month) = digits.split_at(digits.len() - 2);
        let year: i32 = year.parse().ok()?;
        let month: i32 = month.parse().ok()?;
        (1..=12)
            .contains(&month)
            .then_some(Month(year * 12 + month - 1))
    }
}

impl std::fmt::Display for Month {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year(), self.number())
    }
}

/// The months a stream of timestamps falls in; cheap for rows in time order (one
/// comparison per row while the month does not change).
#[derive(Debug, Default)]
pub(super) struct MonthSet {
    months: BTreeSet<Month>,
    /// The last month added, as microseconds `[start, end)`.
    last: Option<(i64, i64)>,
}

impl MonthSet {
    pub(super) fn add(&mut self, ts: DateTime<Utc>) {
        let t = ts.timestamp_micros();
        if let Some((start, end)) = self.last
            && (start..end).contains(&t)
        {
            return;
        }
        let month = Month::of(ts);
        self.last = Some((
            month.start().timestamp_micros(),
            month.next().start().timestamp_micros(),
        ));
        self.months.insert(month);
    }

    /// The months added and not in `known`.
    pub(super) fn missing_from(&self, known: &BTreeSet<Month>) -> Vec<Month> {
        self.months.difference(known).copied().collect()
    }
}

/// How `sensor_readings` is laid out, as last seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layout {
    /// Not looked at yet, or forgotten after a load failed.
    #[default]
    Unknown,
    /// One plain table (a database from before partitions): `migrate` is pending.
    Plain,
    /// Range-partitioned by month on `ts`.
    Partitioned,
}

/// What the store knows of the partitions, shared by its clones.
#[derive(Debug, Default)]
pub(super) struct Known {
    pub(super) layout: Layout,
    /// Months with an attached partition of this module's naming.
    pub(super) months: BTreeSet<Month>,
}

/// The readings table's layout and its partitions' months.
pub(super) async fn survey(conn: &mut PgConnection) -> Result<Known, SinkError> {
    let row = sqlx::query(
        "SELECT c.relkind::text, \
                (SELECT coalesce(array_agg(p.relname::text), '{}') FROM pg_inherits i \
                 JOIN pg_class p ON p.oid = i.inhrelid WHERE i.inhparent = c.oid) \
         FROM pg_class c WHERE c.oid = to_regclass('sensor_readings')",
    )
    .fetch_optional(conn)
    .await
    .map_err(err("listing the readings partitions"))?;
    let Some(row) = row else {
        return Ok(Known::default());
    };
    let kind: String = row.get(0);
    let names: Vec<String> = row.get(1);
    Ok(Known {
        layout: if kind == "p" {
            Layout::Partitioned
        } else {
            Layout::Plain
        },
        months: names.iter().filter_map(|n| Month::of_table(n)).collect(),
    })
}

/// Like [`err`], but never `Data`: a partition that cannot be created is not the
/// file's fault, so its load is retried rather than quarantined.
fn perr(context: &'static str) -> impl FnOnce(sqlx::Error) -> SinkError {
    move |e| {
        let mut e = err(context)(e);
        if e.class == ErrorClass::Data {
            e.class = ErrorClass::Transient;
        }
        e
    }
}

/// A privilege error (42501) as the refusal it is, naming who must create the month's
/// partition; any other error back as it was.
fn not_allowed(month: Month, e: sqlx::Error) -> Result<SinkError, sqlx::Error> {
    if super::sqlstate(&e).as_deref() != Some("42501") {
        return Err(e);
    }
    Ok(SinkError {
        class: ErrorClass::Refused,
        context: "creating a partition",
        detail: format!(
            "readings of {month} have no partition, and this role may not create it ({}): \
             the owner of sensor_readings must create {} (docs/partitions.md); the file waits",
            super::describe(&e),
            month.table()
        ),
    })
}

/// What [`ensure_month`] found or did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ensured {
    Existed,
    Created,
    /// Another partition (not of this module's naming) overlaps the month: rows of the
    /// month go there, or fail to load (transiently) if it does not cover them.
    Overlapped,
}

/// Makes sure the partition for `month` exists, in one short transaction of its own
/// under the month's advisory lock.
pub(super) async fn ensure_month(
    conn: &mut PgConnection,
    month: Month,
) -> Result<Ensured, SinkError> {
    let table = month.table();
    let mut tx = conn.begin().await.map_err(perr("creating a partition"))?;
    sqlx::query(SET_LOCK_TIMEOUT)
        .execute(&mut *tx)
        .await
        .map_err(perr("creating a partition"))?;
    sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
        .bind(MONTH_LOCK)
        .bind(month.0)
        .execute(&mut *tx)
        .await
        .map_err(perr("locking a month to create its partition"))?;
    let (exists, attached): (bool, bool) = sqlx::query_as(
        "SELECT to_regclass($1) IS NOT NULL, EXISTS (SELECT 1 FROM pg_inherits \
         WHERE inhrelid = to_regclass($1) AND inhparent = to_regclass('sensor_readings'))",
    )
    .bind(&table)
    .fetch_one(&mut *tx)
    .await
    .map_err(perr("looking for a partition"))?;
    match (exists, attached) {
        (true, true) => return Ok(Ensured::Existed),
        (true, false) => {
            return Err(SinkError {
                class: ErrorClass::Transient,
                context: "creating a partition",
                detail: format!(
                    "a table {table} exists but is not a partition of sensor_readings \
                     (retention may be dropping it); the load is retried"
                ),
            });
        }
        (false, _) => {}
    }
    // The names are this module's (digits only): nothing outside reaches these texts.
    let created = sqlx::query(AssertSqlSafe(format!(
        "CREATE TABLE \"{table}\" (LIKE sensor_readings INCLUDING DEFAULTS)"
    )))
    .execute(&mut *tx)
    .await;
    if let Err(e) = created {
        return Err(not_allowed(month, e).unwrap_or_else(perr("creating a partition")));
    }
    let attach = sqlx::query(AssertSqlSafe(format!(
        "ALTER TABLE sensor_readings ATTACH PARTITION \"{table}\" \
         FOR VALUES FROM ({}) TO ({})",
        month.bound(),
        month.next().bound()
    )))
    .execute(&mut *tx)
    .await;
    match attach {
        Ok(_) => {}
        // 42P17: "partition … would overlap partition …", one someone else made.
        Err(e) if super::sqlstate(&e).as_deref() == Some("42P17") => {
            drop(tx);
            warn!(month = %month, error = %super::describe(&e),
                "another partition overlaps this month; rows of it go there");
            return Ok(Ensured::Overlapped);
        }
        Err(e) => {
            return Err(not_allowed(month, e).unwrap_or_else(perr("attaching a partition")));
        }
    }
    tx.commit().await.map_err(perr("creating a partition"))?;
    info!(partition = %table, month = %month, "created the readings partition for a month");
    Ok(Ensured::Created)
}

/// What one retention pass dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    pub month: Month,
    pub readings: i64,
}

/// Drops every partition of this module's naming whose month ended at or before
/// `horizon`: detached concurrently (loads into other months go on), then counted,
/// logged in `retention_log` and dropped in one transaction. A partition left detached
/// or half-detached by an interrupted pass is finished first. Only one agent at a time
/// runs a pass; the others return at once with nothing dropped.
pub(super) async fn drop_old(
    conn: &mut PgConnection,
    retention: Retention,
    horizon: DateTime<Utc>,
    agent: &str,
) -> Result<Vec<Dropped>, SinkError> {
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(RETENTION_LOCK)
        .fetch_one(&mut *conn)
        .await
        .map_err(err("locking retention"))?;
    if !locked {
        return Ok(Vec::new());
    }
    let result = drop_old_locked(conn, retention, horizon, agent).await;
    // A failed unlock leaves the lock with the session, which the pool closes in time.
    let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(RETENTION_LOCK)
        .execute(&mut *conn)
        .await;
    result
}

async fn drop_old_locked(
    conn: &mut PgConnection,
    retention: Retention,
    horizon: DateTime<Utc>,
    agent: &str,
) -> Result<Vec<Dropped>, SinkError> {
    // Every table of our naming, whether attached, detaching or detached.
    let rows: Vec<(String, Option<bool>)> = sqlx::query_as(
        "SELECT c.relname::text, \
                (SELECT i.inhdetachpending FROM pg_inherits i \
                 WHERE i.inhrelid = c.oid AND i.inhparent = to_regclass('sensor_readings')) \
         FROM pg_class c WHERE c.relkind = 'r' AND c.relname LIKE 'sensor\\_readings\\_p%' \
           AND pg_table_is_visible(c.oid) ORDER BY c.relname",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(err("listing partitions for retention"))?;
    // A detach left pending first: while one is, PostgreSQL refuses to start another.
    let (pending, others): (Vec<_>, Vec<_>) = rows.into_iter().partition(|r| r.1 == Some(true));
    let mut dropped = Vec::new();
    for (table, detaching) in pending.into_iter().chain(others) {
        let Some(month) = Month::of_table(&table) else {
            continue;
        };
        if month.next().start() > horizon {
            continue;
        }
        sqlx::query("SET lock_timeout = '5s'")
            .execute(&mut *conn)
            .await
            .map_err(err("dropping an old partition"))?;
        let detach = match detaching {
            Some(false) => Some("CONCURRENTLY"),
            Some(true) => Some("FINALIZE"),
            None => None,
        };
        if let Some(how) = detach {
            // Not in a transaction block: CONCURRENTLY commits twice on its own.
            sqlx::raw_sql(AssertSqlSafe(format!(
                "ALTER TABLE sensor_readings DETACH PARTITION \"{table}\" {how}"
            )))
            .execute(&mut *conn)
            .await
            .map_err(err("detaching an old partition"))?;
        }
        let mut tx = conn
            .begin()
            .await
            .map_err(err("dropping an old partition"))?;
        let readings: i64 =
            sqlx::query_scalar(AssertSqlSafe(format!("SELECT count(*) FROM \"{table}\"")))
                .fetch_one(&mut *tx)
                .await
                .map_err(err("counting an old partition"))?;
        sqlx::query(
            "INSERT INTO retention_log (partition, range_from, range_to, readings, retention, \
             agent) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&table)
        .bind(month.start())
        .bind(month.next().start())
        .bind(readings)
        .bind(retention.to_string())
        .bind(agent)
        .execute(&mut *tx)
        .await
        .map_err(err("logging a dropped partition"))?;
        sqlx::query(AssertSqlSafe(format!("DROP TABLE \"{table}\"")))
            .execute(&mut *tx)
            .await
            .map_err(err("dropping an old partition"))?;
        // The further measures' flags of those readings go with them.
        sqlx::query("DELETE FROM qc_measure_flags WHERE ts >= $1 AND ts < $2")
            .bind(month.start())
            .bind(month.next().start())
            .execute(&mut *tx)
            .await
            .map_err(err("dropping an old partition"))?;
        tx.commit()
            .await
            .map_err(err("dropping an old partition"))?;
        info!(partition = %table, month = %month, readings, retention = %retention,
            "retention dropped a month of readings; the ledger keeps its rows");
        dropped.push(Dropped { month, readings });
    }
    sqlx::query("RESET lock_timeout")
        .execute(&mut *conn)
        .await
        .map_err(err("dropping an old partition"))?;
    Ok(dropped)
}

impl PgStore {
    /// Makes sure every month of `months` has a partition (a no-op on a plain table).
    /// The first call, and the first after [`forget_partitions`], surveys the table.
    ///
    /// [`forget_partitions`]: PgStore::forget_partitions
    pub(super) async fn ensure_months(&self, months: &MonthSet) -> Result<(), SinkError> {
        let missing = self.missing_months(months).await?;
        self.create_months(&missing).await
    }

    /// The months of `months` without a partition yet (none on a plain table).
    pub(super) async fn missing_months(&self, months: &MonthSet) -> Result<Vec<Month>, SinkError> {
        let layout = self
            .partitions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .layout;
        if layout == Layout::Unknown {
            self.refresh_partitions().await?;
        }
        let known = self.partitions.lock().unwrap_or_else(|p| p.into_inner());
        Ok(match known.layout {
            Layout::Partitioned => months.missing_from(&known.months),
            Layout::Plain | Layout::Unknown => Vec::new(),
        })
    }

    /// Creates the partitions of `months` (those that do not exist yet).
    pub(super) async fn create_months(&self, months: &[Month]) -> Result<(), SinkError> {
        if months.is_empty() {
            return Ok(());
        }
        let mut conn = self
            .maintenance
            .acquire()
            .await
            .map_err(err("connecting to create a partition"))?;
        for &month in months {
            ensure_month(&mut conn, month).await?;
            self.partitions
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .months
                .insert(month);
        }
        Ok(())
    }

    /// Surveys the table again (layout and partitions).
    pub(super) async fn refresh_partitions(&self) -> Result<Layout, SinkError> {
        let mut conn = self
            .maintenance
            .acquire()
            .await
            .map_err(err("connecting to list partitions"))?;
        let known = survey(&mut conn).await?;
        let layout = known.layout;
        *self.partitions.lock().unwrap_or_else(|p| p.into_inner()) = known;
        Ok(layout)
    }

    /// Forgets what is known of the partitions, after a load failed: retention or a
    /// migration elsewhere may have changed them. The next load surveys again.
    pub(super) fn forget_partitions(&self) {
        *self.partitions.lock().unwrap_or_else(|p| p.into_inner()) = Known::default();
    }

    /// The previous month, this one and [`MONTHS_AHEAD`] ahead, created if missing.
    pub(super) async fn create_ahead(&self, now: DateTime<Utc>) -> Result<(), SinkError> {
        if self.refresh_partitions().await? != Layout::Partitioned {
            return Ok(());
        }
        let this = Month::of(now);
        let window: Vec<Month> = (-1..=MONTHS_AHEAD).map(|k| this.offset(k)).collect();
        let missing: Vec<Month> = {
            let known = self.partitions.lock().unwrap_or_else(|p| p.into_inner());
            window
                .into_iter()
                .filter(|m| !known.months.contains(m))
                .collect()
        };
        self.create_months(&missing).await
    }

    /// One retention pass (see [`drop_old`]); the months dropped.
    pub(super) async fn apply_retention(
        &self,
        retention: Retention,
        now: DateTime<Utc>,
    ) -> Result<Vec<Dropped>, SinkError> {
        // A connection of its own: a detach waits for long loads elsewhere, and loads
        // needing a new month must not wait for it in turn.
        let options = self.maintenance.connect_options();
        let mut conn = PgConnection::connect_with(&options)
            .await
            .map_err(err("connecting for retention"))?;
        if survey(&mut conn).await?.layout != Layout::Partitioned {
            return Ok(Vec::new());
        }
        let dropped = drop_old(&mut conn, retention, retention.horizon(now), &self.agent).await;
        // Closing politely is a courtesy; the server ends the session either way.
        let _ = conn.close().await;
        if dropped.as_ref().is_ok_and(|d| !d.is_empty()) {
            self.refresh_partitions().await?;
        }
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_name_their_partitions_and_bounds() {
        let ts: DateTime<Utc> = "2024-02-29T23:59:59.999999Z".parse().unwrap();
        let m = Month::of(ts);
        assert_eq!(m.to_string(), "2024-02");
        assert_eq!(m.table(), "sensor_readings_p202402");
        assert_eq!(Month::of_table("sensor_readings_p202402"), Some(m));
        assert_eq!(m.start().to_rfc3339(), "2024-02-01T00:00:00+00:00");
        assert_eq!(m.next().start().to_rfc3339(), "2024-03-01T00:00:00+00:00");
        assert_eq!(m.offset(-2).to_string(), "2023-12");
        assert_eq!(m.offset(11).to_string(), "2025-01");
        assert_eq!(m.bound(), "'2024-02-01 00:00:00+00'");
        let last = Month::of("9999-12-31T23:59:59Z".parse().unwrap());
        assert_eq!(last.next().bound(), "'10000-01-01 00:00:00+00'");
        assert_eq!(Month::of_table(&last.next().table()), Some(last.next()));
        for other in [
            "sensor_readings_p2024021",
            "sensor_readings_p202413",
            "x_p202401",
        ] {
            assert_eq!(Month::of_table(other), None, "{other}");
        }
    }

    #[test]
    fn a_month_set_collects_each_month_once() {
        let mut set = MonthSet::default();
        for ts in [
            "2024-01-31T23:59:59Z",
            "2024-01-01T00:00:00Z",
            "2024-02-01T00:00:00Z",
            "2019-07-04T12:00:00Z",
            "2024-01-15T00:00:00Z",
        ] {
            set.add(ts.parse().unwrap());
        }
        let known: BTreeSet<Month> = [Month::of("2024-02-10T00:00:00Z".parse().unwrap())].into();
        let missing: Vec<String> = set
            .missing_from(&known)
            .iter()
            .map(|m| m.to_string())
            .collect();
        assert_eq!(missing, ["2019-07", "2024-01"]);
    }
}
