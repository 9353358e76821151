//! How fast can one file's readings go into MariaDB in one transaction? Loads the same
//! rows (the bench's bulk CSV, read once into memory, with the columns the agent
//! stores) into an emptied `sensor_readings` of `script.mysql.sql`, in rounds that
//! alternate the methods so a loaded machine slows them alike:
//!
//! - `prepared512`: sqlx prepared multi-row INSERTs of 512 tuples, the product's path
//!   (`src/sink/mysql/writer.rs`);
//! - `textN`: text multi-row INSERTs of N tuples with escaped literals (sqlx `raw_sql`);
//! - `infile`: `LOAD DATA LOCAL INFILE` fed from a stream of tab-separated text built
//!   from the rows as the server asks for them (mysql_async's local-infile handler);
//! - `floor`: the `mariadb` client's own `LOAD DATA LOCAL INFILE` of the same rows from
//!   a file (what `bench/run` calls the floor).
//!
//! Every method runs BEGIN … COMMIT around one file's rows (the client's LOAD DATA is
//! one autocommitted statement). Each load is checked against the others (count, sums,
//! times). Usage: `mariadb-load URL CSV SCHEMA [ROUNDS]` (see `bench/mariadb-load/run`).

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use chrono::NaiveDateTime;
use futures_util::StreamExt;
use mysql_async::prelude::Queryable;
use sqlx::{Connection, Executor, MySql, MySqlConnection, QueryBuilder};

const COLUMNS: &str = "file_id, line, ts, sensor_id, temperature, humidity, pressure, \
     temperature_k, temperature_norm, humidity_norm, pressure_norm, extra, ingested_at, qc_flags";
const FILE_ID: &str = "00000000-0000-7000-8000-000000000001";
const SESSION: &str = "SET SESSION sql_mode = CONCAT(@@sql_mode, ',STRICT_ALL_TABLES,NO_ZERO_DATE'), \
     time_zone = '+00:00'; SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED";
/// Rows of tab-separated text per chunk of the LOAD DATA stream (~64 KiB).
const INFILE_CHUNK_ROWS: usize = 600;

type Error = Box<dyn std::error::Error + Send + Sync>;

struct Reading {
    line: i64,
    ts: NaiveDateTime,
    sensor: String,
    values: [Option<f64>; 7],
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Method {
    Prepared512,
    Text(usize),
    Infile,
    Floor,
}

impl Method {
    fn name(self) -> String {
        match self {
            Method::Prepared512 => "prepared512".into(),
            Method::Text(n) => format!("text{n}"),
            Method::Infile => "infile".into(),
            Method::Floor => "floor".into(),
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        return Err("usage: mariadb-load URL CSV SCHEMA [ROUNDS]".into());
    }
    let (url, csv, schema) = (&args[1], &args[2], &args[3]);
    let rounds: usize = args.get(4).map_or(Ok(3), |r| r.parse())?;
    let rows = Arc::new(read_csv(csv)?);
    let db = format!("sensor_ingest_loadexp_{}", std::process::id());
    let base = url
        .rsplit_once('/')
        .map_or(url.as_str(), |(b, _)| b)
        .to_owned();
    let db_url = format!("{base}/{db}");
    let mut admin = MySqlConnection::connect(url).await?;
    admin
        .execute(sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {db}; CREATE DATABASE {db}"
        ))))
        .await?;
    let outcome = measure(&db_url, &db, schema, rows, rounds).await;
    admin
        .execute(sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {db}"
        ))))
        .await?;
    outcome
}

async fn measure(
    url: &str,
    db: &str,
    schema: &str,
    rows: Arc<Vec<Reading>>,
    rounds: usize,
) -> Result<(), Error> {
    let mut sq = MySqlConnection::connect(url).await?;
    for statement in statements(&std::fs::read_to_string(schema)?) {
        sq.execute(sqlx::raw_sql(sqlx::AssertSqlSafe(statement)))
            .await?;
    }
    sq.execute(sqlx::raw_sql(SESSION)).await?;
    let mut my = mysql_async::Conn::new(mysql_async::Opts::from_url(url)?).await?;
    my.query_drop(SESSION).await?;
    let now = chrono::Utc::now().naive_utc();
    let tsv = std::env::temp_dir().join(format!("{db}.tsv"));
    let mut text = String::new();
    for r in rows.iter() {
        tsv_line(&mut text, r, now);
    }
    std::fs::write(&tsv, &text)?;
    drop(text);
    let variables: Vec<(String, String)> = sqlx::query_as(
        "SHOW VARIABLES WHERE Variable_name IN ('max_allowed_packet', 'version', \
         'innodb_flush_log_at_trx_commit', 'log_bin', 'innodb_buffer_pool_size', 'local_infile')",
    )
    .fetch_all(&mut sq)
    .await?;
    println!("rows: {}  server: {variables:?}", rows.len());
    println!("loadavg at start: {}", loadavg());
    let methods = [
        Method::Prepared512,
        Method::Text(1024),
        Method::Text(2048),
        Method::Text(4096),
        Method::Infile,
        Method::Floor,
    ];
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); methods.len()];
    let mut reference: Option<String> = None;
    for round in 0..rounds {
        // Rotate the order each round: no method always runs first or last.
        for k in 0..methods.len() {
            let i = (k + round) % methods.len();
            let method = methods[i];
            sq.execute("TRUNCATE sensor_readings").await?;
            let start = Instant::now();
            match method {
                Method::Prepared512 => prepared(&mut sq, &rows, now).await?,
                Method::Text(n) => text_inserts(&mut sq, &rows, now, n).await?,
                Method::Infile => infile(&mut my, rows.clone(), now).await?,
                Method::Floor => floor(url, db, &tsv).await?,
            }
            let secs = start.elapsed().as_secs_f64();
            times[i].push(secs);
            let check = fingerprint(&mut sq).await?;
            match &reference {
                None => reference = Some(check),
                Some(r) if *r != check => {
                    return Err(
                        format!("{} stored other rows: {check} vs {r}", method.name()).into(),
                    );
                }
                Some(_) => {}
            }
            println!(
                "round {round} {:<12} {:>8.3} s {:>10.0} rows/s",
                method.name(),
                secs,
                rows.len() as f64 / secs
            );
        }
    }
    std::fs::remove_file(&tsv)?;
    println!("loadavg at end: {}", loadavg());
    report(&methods, &times, rows.len());
    Ok(())
}

/// Median and best per method, and the ratio of each median to the floor's.
fn report(methods: &[Method], times: &[Vec<f64>], rows: usize) {
    let median = |t: &[f64]| {
        let mut t = t.to_vec();
        t.sort_by(f64::total_cmp);
        t[t.len() / 2]
    };
    let floor = methods
        .iter()
        .position(|m| *m == Method::Floor)
        .map(|i| median(&times[i]));
    println!("\n| method | median s | median rows/s | best rows/s | median ratio to floor |");
    println!("|---|---|---|---|---|");
    for (m, t) in methods.iter().zip(times) {
        let med = median(t);
        let best = t.iter().copied().fold(f64::INFINITY, f64::min);
        let ratio = floor.map_or(String::from("-"), |f| format!("{:.2}", f / med));
        println!(
            "| {} | {med:.3} | {:.0} | {:.0} | {ratio} |",
            m.name(),
            rows as f64 / med,
            rows as f64 / best
        );
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// The bench's CSV (`timestamp,sensor_id,temperature,humidity,pressure`) as the rows the
/// agent would store: derived values beside the measures, no `extra`, no flags.
fn read_csv(path: &str) -> Result<Vec<Reading>, Error> {
    let text = std::fs::read_to_string(path)?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        if f.len() != 5 {
            return Err(format!("line {}: expected 5 fields", i + 1).into());
        }
        let ts = NaiveDateTime::parse_from_str(f[0], "%Y-%m-%dT%H:%M:%SZ")?;
        let (t, h, p): (f64, f64, f64) = (f[2].parse()?, f[3].parse()?, f[4].parse()?);
        out.push(Reading {
            line: i as i64 + 1,
            ts,
            sensor: f[1].to_owned(),
            values: [
                Some(t),
                Some(h),
                Some(p),
                Some(t + 273.15),
                Some((t + 40.0) / 125.0),
                Some(h / 100.0),
                Some((p - 300.0) / 800.0),
            ],
        });
    }
    Ok(out)
}

/// The statements of a script: split at `;` ending a line, comments left out (as the
/// agent applies it).
fn statements(script: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in script.lines() {
        let code = line.trim_end();
        if code.trim_start().starts_with("--") || code.is_empty() {
            continue;
        }
        current.push_str(code);
        current.push('\n');
        if code.ends_with(';') {
            out.push(std::mem::take(&mut current));
        }
    }
    out
}

/// What each load must have stored: count, sums, times.
async fn fingerprint(conn: &mut MySqlConnection) -> Result<String, Error> {
    let row: (i64, String, String, String, String) = sqlx::query_as(
        "SELECT count(*), CAST(SUM(temperature) AS CHAR), CAST(SUM(pressure_norm) AS CHAR), \
         CAST(SUM(CRC32(sensor_id)) AS CHAR), CAST(SUM(UNIX_TIMESTAMP(ts) - line) AS CHAR) \
         FROM sensor_readings",
    )
    .fetch_one(conn)
    .await?;
    Ok(format!("{row:?}"))
}

/// The product's statements: 512 tuples, and the remainder in powers of two.
async fn prepared(
    conn: &mut MySqlConnection,
    rows: &[Reading],
    now: NaiveDateTime,
) -> Result<(), Error> {
    let mut tx = conn.begin().await?;
    let mut rest = rows;
    while !rest.is_empty() {
        let n = if rest.len() >= 512 {
            512
        } else {
            1 << rest.len().ilog2()
        };
        let (chunk, tail) = rest.split_at(n);
        let mut q = QueryBuilder::<MySql>::new(format!("INSERT INTO sensor_readings ({COLUMNS}) "));
        q.push_values(chunk, |mut b, r| {
            b.push_bind(FILE_ID)
                .push_bind(r.line)
                .push_bind(r.ts)
                .push_bind(r.sensor.as_str());
            for v in r.values {
                b.push_bind(v);
            }
            b.push_bind(None::<&str>).push_bind(now).push_bind(0i32);
        });
        q.build().execute(&mut *tx).await?;
        rest = tail;
    }
    tx.commit().await?;
    Ok(())
}

/// Text INSERTs of `per` tuples, values as escaped literals.
async fn text_inserts(
    conn: &mut MySqlConnection,
    rows: &[Reading],
    now: NaiveDateTime,
    per: usize,
) -> Result<(), Error> {
    let mut tx = conn.begin().await?;
    let now = now.format("'%Y-%m-%d %H:%M:%S%.6f'").to_string();
    let mut sql = String::new();
    for chunk in rows.chunks(per) {
        sql.clear();
        let _ = write!(sql, "INSERT INTO sensor_readings ({COLUMNS}) VALUES ");
        for (i, r) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(',');
            }
            let _ = write!(
                sql,
                "('{FILE_ID}',{},{},",
                r.line,
                r.ts.format("'%Y-%m-%d %H:%M:%S%.6f'")
            );
            quoted(&mut sql, &r.sensor);
            for v in r.values {
                match v {
                    Some(v) => {
                        let _ = write!(sql, ",{v:?}");
                    }
                    None => sql.push_str(",NULL"),
                }
            }
            let _ = write!(sql, ",NULL,{now},0)");
        }
        tx.execute(sqlx::raw_sql(sqlx::AssertSqlSafe(sql.clone())))
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// A string literal, escaped for the default sql_mode (backslash escapes on).
fn quoted(out: &mut String, s: &str) {
    out.push('\'');
    for c in s.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '\0' => out.push_str("\\0"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\x1a' => out.push_str("\\Z"),
            c => out.push(c),
        }
    }
    out.push('\'');
}

/// One row as LOAD DATA's default text: tab-separated, `\N` for NULL, backslash escapes.
fn tsv_line(out: &mut String, r: &Reading, now: NaiveDateTime) {
    let _ = write!(
        out,
        "{FILE_ID}\t{}\t{}\t",
        r.line,
        r.ts.format("%Y-%m-%d %H:%M:%S%.6f")
    );
    for c in r.sensor.chars() {
        match c {
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\\' => out.push_str("\\\\"),
            '\0' => out.push_str("\\0"),
            c => out.push(c),
        }
    }
    for v in r.values {
        match v {
            Some(v) => {
                let _ = write!(out, "\t{v:?}");
            }
            None => out.push_str("\t\\N"),
        }
    }
    let _ = writeln!(out, "\t\\N\t{}\t0", now.format("%Y-%m-%d %H:%M:%S%.6f"));
}

/// LOAD DATA LOCAL INFILE in a transaction, its data a stream of text chunks made from
/// the rows as the driver sends them (memory bounded by a chunk). LOCAL turns errors
/// into warnings (the server cannot stop the client mid-stream): any warning fails.
async fn infile(
    conn: &mut mysql_async::Conn,
    rows: Arc<Vec<Reading>>,
    now: NaiveDateTime,
) -> Result<(), Error> {
    conn.query_drop("BEGIN").await?;
    let data = rows.clone();
    conn.set_infile_handler(async move {
        let stream = futures_util::stream::unfold(0usize, move |at| {
            let data = data.clone();
            async move {
                if at >= data.len() {
                    return None;
                }
                let end = (at + INFILE_CHUNK_ROWS).min(data.len());
                let mut text = String::with_capacity(128 * (end - at));
                for r in &data[at..end] {
                    tsv_line(&mut text, r, now);
                }
                Some((Ok(Bytes::from(text)), end))
            }
        });
        Ok(stream.boxed())
    });
    conn.query_drop(format!(
        "LOAD DATA LOCAL INFILE 'rows' INTO TABLE sensor_readings CHARACTER SET utf8mb4 ({COLUMNS})"
    ))
    .await?;
    let (loaded, warnings) = (conn.affected_rows(), conn.get_warnings());
    if warnings != 0 || loaded != rows.len() as u64 {
        conn.query_drop("ROLLBACK").await?;
        return Err(format!("LOAD DATA: {loaded} rows, {warnings} warnings").into());
    }
    conn.query_drop("COMMIT").await?;
    Ok(())
}

/// The `mariadb` client's own LOAD DATA LOCAL INFILE of the same rows, from a file.
async fn floor(url: &str, db: &str, tsv: &std::path::Path) -> Result<(), Error> {
    let host = url
        .split('@')
        .nth(1)
        .and_then(|h| h.split('/').next())
        .unwrap_or("127.0.0.1:3306");
    let (host, port) = host.split_once(':').unwrap_or((host, "3306"));
    let authority = url
        .split("://")
        .nth(1)
        .and_then(|a| a.split_once('@'))
        .map(|(u, _)| u);
    let (user, password) = match authority.map(|a| a.split_once(':')) {
        Some(Some((user, password))) => (user, Some(password)),
        Some(None) => (authority.unwrap_or("root"), None),
        None => ("root", None),
    };
    let mut client = tokio::process::Command::new("mariadb");
    if let Some(password) = password {
        // Percent-encoded in the URL like the agent's; never on the command line.
        client.env("MYSQL_PWD", password);
    }
    let done = client
        .args([
            "--local-infile=1",
            &format!("--user={user}"),
            &format!("--host={host}"),
            &format!("--port={port}"),
            db,
            "-e",
            &format!(
                "SET SESSION sql_mode = CONCAT(@@sql_mode, ',STRICT_ALL_TABLES'), time_zone = '+00:00'; \
                 LOAD DATA LOCAL INFILE '{}' INTO TABLE sensor_readings CHARACTER SET utf8mb4 ({COLUMNS})",
                tsv.display()
            ),
        ])
        .output()
        .await?;
    if !done.status.success() {
        return Err(format!("mariadb: {}", String::from_utf8_lossy(&done.stderr)).into());
    }
    Ok(())
}
