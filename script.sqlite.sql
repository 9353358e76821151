-- sensor-ingest schema for SQLite, the embedded store. It mirrors script.sql (the
-- PostgreSQL schema) table for table and column for column; only the types differ:
--   uuid        -> TEXT, hyphenated
--   timestamptz -> TEXT, UTC as YYYY-MM-DDTHH:MM:SS.ffffffZ (fixed width, so it sorts in
--                  time order and SQLite's date functions read it)
--   jsonb       -> TEXT holding JSON (query it with json_extract)
--   double precision -> REAL, bigint -> INTEGER
-- Applied by the agent at every startup inside one write transaction; every statement
-- is idempotent.

-- The ledger: one row per attempt outcome. At most one 'loaded' or 'partial' row per
-- content hash is what makes a file's content load exactly once, whatever its name.
-- (A database created before source profiles is migrated by the agent before this
-- script runs: SQLite cannot change a CHECK constraint in place.)
CREATE TABLE IF NOT EXISTS ingest_files (
    id              TEXT    PRIMARY KEY,
    file_name       TEXT    NOT NULL,
    content_hash    TEXT    NOT NULL,          -- BLAKE3, hex
    size_bytes      INTEGER NOT NULL,
    status          TEXT    NOT NULL CHECK (status IN ('loaded', 'partial', 'quarantined', 'duplicate')),
    row_count       INTEGER NOT NULL DEFAULT 0, -- rows loaded (loaded, partial) or read (quarantined)
    rejected_rows   INTEGER NOT NULL DEFAULT 0, -- bad rows (quarantined), or left out of a partial load
    error_summary   TEXT,
    duplicate_of    TEXT    REFERENCES ingest_files (id),
    first_timestamp TEXT,
    last_timestamp  TEXT,
    started_at      TEXT    NOT NULL,
    finished_at     TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    archived_as     TEXT,                      -- name in processed/ or quarantine/
    archived_at     TEXT,
    agent           TEXT    NOT NULL,          -- host:pid that wrote the row
    profile         TEXT,                      -- the source profile that read the file
    profile_hash    TEXT,                      -- BLAKE3 of its text ('builtin': the default)
    source_identity TEXT                       -- digest of an object's bucket, key, ETag, size; NULL: a file
);
CREATE UNIQUE INDEX IF NOT EXISTS ingest_files_one_load_per_content
    ON ingest_files (content_hash) WHERE status IN ('loaded', 'partial');
DROP INDEX IF EXISTS ingest_files_one_load_per_hash;
CREATE INDEX IF NOT EXISTS ingest_files_hash ON ingest_files (content_hash);
CREATE INDEX IF NOT EXISTS ingest_files_finished ON ingest_files (finished_at);
-- Objects left in place (S3_AFTER=keep) known from a listing, unread. The column is
-- added to older databases before this script runs (sqlite::migrate_source_identity).
CREATE INDEX IF NOT EXISTS ingest_files_source ON ingest_files (source_identity)
    WHERE source_identity IS NOT NULL;

-- One row per valid CSV row: canonical values as read, derived values beside them,
-- other columns in `extra`, and lineage (file, physical line, ingest time).
-- file_id refers to ingest_files(id); as in script.sql it is not declared a foreign
-- key, because readings are only written in the transaction of their ledger row.
CREATE TABLE IF NOT EXISTS sensor_readings (
    file_id          TEXT    NOT NULL,
    line             INTEGER NOT NULL,  -- physical line in the file; header = 1
    ts               TEXT    NOT NULL,
    sensor_id        TEXT    NOT NULL,
    temperature      REAL,              -- °C
    humidity         REAL,              -- %RH
    pressure         REAL,              -- hPa
    temperature_k    REAL,
    temperature_norm REAL,              -- (value - min) / (max - min) of the configured range
    humidity_norm    REAL,
    pressure_norm    REAL,
    extra            TEXT,              -- JSON object
    ingested_at      TEXT    NOT NULL,  -- the load transaction's time
    qc_flags         INTEGER NOT NULL DEFAULT 0, -- quality flags, bit 4*measure + test (below)
    PRIMARY KEY (file_id, line)
);
-- qc_flags: bit 4*m + t for measure m (0 temperature, 1 humidity, 2 pressure) and test
-- t (0 step, 1 spike, 2 flat line, 3 outlier); 0 = nothing flagged, never NULL.
--   temperature: step 1, spike 2, flat 4, outlier 8      (mask 15)
--   humidity:    step 16, spike 32, flat 64, outlier 128 (mask 240)
--   pressure:    step 256, spike 512, flat 1024, outlier 2048 (mask 3840)
--   bit 12 (4096): gap, the reading came more than QC_GAP_FACTOR usual intervals after
--     the sensor's previous one; bit 13 (8192): time travel, the reading is older than
--     the sensor's latest one in its file by more than the usual interval (clock set
--     back). Bits 14 and 15 are free; measures beyond the three get no bits here.
-- Flags never change a value. (Databases created before the column are migrated by
-- the agent before this script runs: SQLite has no ADD COLUMN IF NOT EXISTS.)
CREATE INDEX IF NOT EXISTS sensor_readings_sensor_ts ON sensor_readings (sensor_id, ts);
-- A B-tree where PostgreSQL has a BRIN index (SQLite has no BRIN).
CREATE INDEX IF NOT EXISTS sensor_readings_ts ON sensor_readings (ts);

-- Files followed in place (append mode, docs/append.md): one row per file name, written
-- in the transaction of each increment's ledger row, so the offset commits with the
-- rows. An increment commits only while the row still names the increment it started
-- from (ledger_id): two attempts from one position cannot both advance it.
CREATE TABLE IF NOT EXISTS followed_files (
    file_name        TEXT    PRIMARY KEY,  -- the name in the data folder
    device           INTEGER NOT NULL,     -- device and inode read (another inode: rotated)
    inode            INTEGER NOT NULL,
    committed_offset INTEGER NOT NULL,     -- bytes loaded or refused, always after a newline
    committed_lines  INTEGER NOT NULL,     -- physical lines before the offset
    header_hash      TEXT    NOT NULL,     -- BLAKE3 of the header lines (metadata included)
    tail_hash        TEXT    NOT NULL,     -- BLAKE3 of the last <= 4 KiB before the offset
    last_growth      TEXT    NOT NULL,     -- the file's mtime when the increment was read
    committed_at     TEXT    NOT NULL,
    ledger_id        TEXT    NOT NULL      -- the increment's ledger row
);

-- One row per loaded file and measured column present in it.
CREATE TABLE IF NOT EXISTS file_metrics (
    file_id      TEXT    NOT NULL REFERENCES ingest_files (id),
    column_name  TEXT    NOT NULL,
    value_count  INTEGER NOT NULL,  -- non-null values
    null_count   INTEGER NOT NULL,
    min_value    REAL,
    max_value    REAL,
    mean_value   REAL,
    stddev_value REAL,              -- sample standard deviation (n - 1)
    source_unit  TEXT,                       -- the unit the file wrote (values are stored converted)
    missing_codes INTEGER NOT NULL DEFAULT 0, -- cells that held a missing-value code (counted in null_count)
    qc_step      INTEGER NOT NULL DEFAULT 0, -- readings flagged by each quality test (canonical
    qc_spike     INTEGER NOT NULL DEFAULT 0, -- measures; a spike on a file's last reading is
    qc_flat      INTEGER NOT NULL DEFAULT 0, -- counted here when the sensor's next file finds it)
    qc_outlier   INTEGER NOT NULL DEFAULT 0,
    qc_gap       INTEGER NOT NULL DEFAULT 0, -- readings holding the column flagged gap,
    qc_time_travel INTEGER NOT NULL DEFAULT 0, -- and time travel
    PRIMARY KEY (file_id, column_name)
);

-- Quality flags of further measures (columns kept in `extra`, checked when a profile
-- gives their thresholds in [qc.<measure>]), for flagged readings only: one row per
-- reading and measure, `flags` with bit t per test (1 step, 2 spike, 4 flat,
-- 8 outlier), the reading named by (file_id, line) as in sensor_readings. Written in
-- the load's transaction; later files add spike and flat bits to it.
CREATE TABLE IF NOT EXISTS qc_measure_flags (
    file_id   TEXT    NOT NULL,
    line      INTEGER NOT NULL,
    ts        TEXT    NOT NULL,
    sensor_id TEXT    NOT NULL,
    measure   TEXT    NOT NULL,
    flags     INTEGER NOT NULL,
    PRIMARY KEY (file_id, line, measure)
);
CREATE INDEX IF NOT EXISTS qc_measure_flags_sensor ON qc_measure_flags (sensor_id, measure, ts);

-- Gold layer: per sensor and UTC hour / UTC day, the count, min, max and mean of each
-- measure (NULL cells are left out of that measure's figures; `readings` counts rows),
-- and how many readings carry quality flags (`flagged`: any; `<measure>_flagged`: on
-- that measure). Periods are the same fixed-width UTC text as `ts`, truncated: hour
-- 2024-05-01T12:00:00.000000Z, day 2024-05-01T00:00:00.000000Z. Dropped and created
-- again at every start, so an older database gets this version's columns.
DROP VIEW IF EXISTS sensor_hourly;
CREATE VIEW sensor_hourly AS
SELECT sensor_id,
       substr(ts, 1, 13) || ':00:00.000000Z' AS hour,
       count(*) AS readings,
       count(temperature) AS temperature_count,
       min(temperature)   AS temperature_min,
       max(temperature)   AS temperature_max,
       avg(temperature)   AS temperature_mean,
       count(humidity) AS humidity_count,
       min(humidity)   AS humidity_min,
       max(humidity)   AS humidity_max,
       avg(humidity)   AS humidity_mean,
       count(pressure) AS pressure_count,
       min(pressure)   AS pressure_min,
       max(pressure)   AS pressure_max,
       avg(pressure)   AS pressure_mean,
       count(CASE WHEN qc_flags <> 0 THEN 1 END) AS flagged,
       count(CASE WHEN qc_flags & 15 <> 0 THEN 1 END) AS temperature_flagged,
       count(CASE WHEN qc_flags & 240 <> 0 THEN 1 END) AS humidity_flagged,
       count(CASE WHEN qc_flags & 3840 <> 0 THEN 1 END) AS pressure_flagged
FROM sensor_readings
GROUP BY sensor_id, substr(ts, 1, 13);

DROP VIEW IF EXISTS sensor_daily;
CREATE VIEW sensor_daily AS
SELECT sensor_id,
       substr(ts, 1, 10) || 'T00:00:00.000000Z' AS day,
       count(*) AS readings,
       count(temperature) AS temperature_count,
       min(temperature)   AS temperature_min,
       max(temperature)   AS temperature_max,
       avg(temperature)   AS temperature_mean,
       count(humidity) AS humidity_count,
       min(humidity)   AS humidity_min,
       max(humidity)   AS humidity_max,
       avg(humidity)   AS humidity_mean,
       count(pressure) AS pressure_count,
       min(pressure)   AS pressure_min,
       max(pressure)   AS pressure_max,
       avg(pressure)   AS pressure_mean,
       count(CASE WHEN qc_flags <> 0 THEN 1 END) AS flagged,
       count(CASE WHEN qc_flags & 15 <> 0 THEN 1 END) AS temperature_flagged,
       count(CASE WHEN qc_flags & 240 <> 0 THEN 1 END) AS humidity_flagged,
       count(CASE WHEN qc_flags & 3840 <> 0 THEN 1 END) AS pressure_flagged
FROM sensor_readings
GROUP BY sensor_id, substr(ts, 1, 10);

-- The same figures without flagged values: a value flagged by any test is left out of
-- its own measure's figures only (a flagged temperature does not hide the humidity of
-- the same reading), and a reading flagged time travel (its time is wrong) is left out
-- of every measure (masks 8207 = 15 + 8192, 8432, 12032); `readings` still counts
-- every row. A gap flag hides no value.
DROP VIEW IF EXISTS sensor_hourly_clean;
CREATE VIEW sensor_hourly_clean AS
SELECT sensor_id,
       substr(ts, 1, 13) || ':00:00.000000Z' AS hour,
       count(*) AS readings,
       count(temperature) AS temperature_count,
       min(temperature)   AS temperature_min,
       max(temperature)   AS temperature_max,
       avg(temperature)   AS temperature_mean,
       count(humidity) AS humidity_count,
       min(humidity)   AS humidity_min,
       max(humidity)   AS humidity_max,
       avg(humidity)   AS humidity_mean,
       count(pressure) AS pressure_count,
       min(pressure)   AS pressure_min,
       max(pressure)   AS pressure_max,
       avg(pressure)   AS pressure_mean
FROM (SELECT sensor_id, ts,
        CASE WHEN qc_flags & 8207 = 0 THEN temperature END AS temperature,
        CASE WHEN qc_flags & 8432 = 0 THEN humidity END AS humidity,
        CASE WHEN qc_flags & 12032 = 0 THEN pressure END AS pressure
      FROM sensor_readings) AS r
GROUP BY sensor_id, substr(ts, 1, 13);

DROP VIEW IF EXISTS sensor_daily_clean;
CREATE VIEW sensor_daily_clean AS
SELECT sensor_id,
       substr(ts, 1, 10) || 'T00:00:00.000000Z' AS day,
       count(*) AS readings,
       count(temperature) AS temperature_count,
       min(temperature)   AS temperature_min,
       max(temperature)   AS temperature_max,
       avg(temperature)   AS temperature_mean,
       count(humidity) AS humidity_count,
       min(humidity)   AS humidity_min,
       max(humidity)   AS humidity_max,
       avg(humidity)   AS humidity_mean,
       count(pressure) AS pressure_count,
       min(pressure)   AS pressure_min,
       max(pressure)   AS pressure_max,
       avg(pressure)   AS pressure_mean
FROM (SELECT sensor_id, ts,
        CASE WHEN qc_flags & 8207 = 0 THEN temperature END AS temperature,
        CASE WHEN qc_flags & 8432 = 0 THEN humidity END AS humidity,
        CASE WHEN qc_flags & 12032 = 0 THEN pressure END AS pressure
      FROM sensor_readings) AS r
GROUP BY sensor_id, substr(ts, 1, 10);
