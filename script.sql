-- sensor-ingest schema for PostgreSQL.
-- Applied by the agent at every startup (under an advisory lock, so several agents can
-- start together); every statement is idempotent.

-- Which script.sql was applied last (its BLAKE3, written by the agent in the same
-- transaction): an agent that starts against a database already holding this very
-- schema applies nothing, so it takes no table lock while other agents are loading.
-- Delete the row to have the next agent apply the script again.
CREATE TABLE IF NOT EXISTS sensor_ingest_schema (
    id          integer     PRIMARY KEY CHECK (id = 1),
    fingerprint text        NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
);

-- The ledger: one row per attempt outcome. At most one 'loaded' or 'partial' row per
-- content hash is what makes a file's content load exactly once, whatever its name.
CREATE TABLE IF NOT EXISTS ingest_files (
    id              uuid PRIMARY KEY,
    file_name       text        NOT NULL,
    content_hash    text        NOT NULL,          -- BLAKE3, hex
    size_bytes      bigint      NOT NULL,
    status          text        NOT NULL CHECK (status IN ('loaded', 'partial', 'quarantined', 'duplicate')),
    row_count       bigint      NOT NULL DEFAULT 0, -- rows loaded (loaded, partial) or read (quarantined)
    rejected_rows   bigint      NOT NULL DEFAULT 0, -- bad rows (quarantined), or left out of a partial load
    error_summary   text,
    duplicate_of    uuid        REFERENCES ingest_files (id),
    first_timestamp timestamptz,
    last_timestamp  timestamptz,
    started_at      timestamptz NOT NULL,
    finished_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    archived_as     text,                          -- name in processed/ or quarantine/
    archived_at     timestamptz,
    agent           text        NOT NULL,          -- host:pid that wrote the row
    profile         text,                          -- the source profile that read the file
    profile_hash    text,                          -- BLAKE3 of its text ('builtin': the default)
    source_identity text                           -- digest of an object's bucket, key, ETag, size; NULL: a file
);
-- Databases created before source profiles: the new columns, the 'partial' status, and
-- the one-load index over both statuses that load rows.
ALTER TABLE ingest_files ADD COLUMN IF NOT EXISTS profile text;
ALTER TABLE ingest_files ADD COLUMN IF NOT EXISTS profile_hash text;
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint
                   WHERE conrelid = 'ingest_files'::regclass AND contype = 'c'
                     AND pg_get_constraintdef(oid) LIKE '%partial%') THEN
        ALTER TABLE ingest_files DROP CONSTRAINT IF EXISTS ingest_files_status_check;
        ALTER TABLE ingest_files ADD CONSTRAINT ingest_files_status_check
            CHECK (status IN ('loaded', 'partial', 'quarantined', 'duplicate'));
    END IF;
END $$;
CREATE UNIQUE INDEX IF NOT EXISTS ingest_files_one_load_per_content
    ON ingest_files (content_hash) WHERE status IN ('loaded', 'partial');
DROP INDEX IF EXISTS ingest_files_one_load_per_hash;
CREATE INDEX IF NOT EXISTS ingest_files_hash ON ingest_files (content_hash);
CREATE INDEX IF NOT EXISTS ingest_files_finished ON ingest_files (finished_at);
-- Objects left in place (S3_AFTER=keep) known from a listing, unread; databases
-- created before it gain the column here.
ALTER TABLE ingest_files ADD COLUMN IF NOT EXISTS source_identity text;
CREATE INDEX IF NOT EXISTS ingest_files_source ON ingest_files (source_identity)
    WHERE source_identity IS NOT NULL;

-- One row per valid CSV row: canonical values as read, derived values beside them,
-- other columns in `extra`, and lineage (file, physical line, ingest time).
-- file_id refers to ingest_files(id) but is not declared a foreign key: readings are
-- only written in the transaction that writes their ledger row, and a per-row RI check
-- cost about a quarter of a bulk load's time (bench/run, issue 6).
-- Range-partitioned by calendar month (UTC) on ts, so a query on a time range reads only
-- its months and retention drops whole months. The agent creates the partitions
-- (sensor_readings_pYYYYMM) ahead of time and on demand; there is no default partition,
-- so a row is never filed where no one looks for it. A database created before
-- partitions keeps its plain table (IF NOT EXISTS) until `sensor-ingest migrate`.
CREATE TABLE IF NOT EXISTS sensor_readings (
    file_id          uuid             NOT NULL,
    line             bigint           NOT NULL,  -- physical line in the file; header = 1
    ts               timestamptz      NOT NULL,
    sensor_id        text             NOT NULL,
    temperature      double precision,           -- °C
    humidity         double precision,           -- %RH
    pressure         double precision,           -- hPa
    temperature_k    double precision,
    temperature_norm double precision,           -- (value - min) / (max - min) of the configured range
    humidity_norm    double precision,
    pressure_norm    double precision,
    extra            jsonb,
    ingested_at      timestamptz      NOT NULL DEFAULT now(),  -- the load transaction's time
    qc_flags         smallint         NOT NULL DEFAULT 0,      -- quality flags, bit 4*measure + test (below)
    PRIMARY KEY (file_id, line, ts)              -- a partitioned key must hold ts
) PARTITION BY RANGE (ts);
-- qc_flags: bit 4*m + t for measure m (0 temperature, 1 humidity, 2 pressure) and test
-- t (0 step, 1 spike, 2 flat line, 3 outlier); 0 = nothing flagged, never NULL.
--   temperature: step 1, spike 2, flat 4, outlier 8      (mask 15)
--   humidity:    step 16, spike 32, flat 64, outlier 128 (mask 240)
--   pressure:    step 256, spike 512, flat 1024, outlier 2048 (mask 3840)
--   bit 12 (4096): gap, the reading came more than QC_GAP_FACTOR usual intervals after
--     the sensor's previous one; bit 13 (8192): time travel, the reading is older than
--     the sensor's latest one in its file by more than the usual interval (clock set
--     back). Bits 14 and 15 are free; measures beyond the three get no bits here.
-- Flags never change a value. Databases created before the column get it here.
ALTER TABLE sensor_readings ADD COLUMN IF NOT EXISTS qc_flags smallint NOT NULL DEFAULT 0;
ALTER TABLE sensor_readings DROP CONSTRAINT IF EXISTS sensor_readings_file_id_fkey;
-- On the partitioned table these are partitioned indexes: each partition gets its own.
CREATE INDEX IF NOT EXISTS sensor_readings_sensor_ts ON sensor_readings (sensor_id, ts);
-- Time ranges across all sensors: BRIN, because readings arrive roughly in time order.
-- It is a few pages instead of a B-tree as large as the column, and a load spends no
-- time maintaining it (a B-tree on ts cost about 30% of a bulk load).
DROP INDEX IF EXISTS sensor_readings_ts;
CREATE INDEX IF NOT EXISTS sensor_readings_ts_brin ON sensor_readings USING brin (ts);

-- What retention dropped: one row per monthly partition, with its readings. The ledger
-- keeps the rows of the files whose readings these were.
CREATE TABLE IF NOT EXISTS retention_log (
    partition   text        NOT NULL,
    range_from  timestamptz NOT NULL,
    range_to    timestamptz NOT NULL,
    readings    bigint      NOT NULL,
    retention   text        NOT NULL,          -- the RETENTION in force, e.g. '400 days'
    dropped_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    agent       text        NOT NULL
);

-- Files followed in place (append mode, docs/append.md): one row per file name, written
-- in the transaction of each increment's ledger row, so the offset commits with the
-- rows. An increment commits only while the row still names the increment it started
-- from (ledger_id): two attempts from one position cannot both advance it.
CREATE TABLE IF NOT EXISTS followed_files (
    file_name        text        PRIMARY KEY,  -- the name in the data folder
    device           bigint      NOT NULL,     -- device and inode read (another inode: rotated)
    inode            bigint      NOT NULL,
    committed_offset bigint      NOT NULL,     -- bytes loaded or refused, always after a newline
    committed_lines  bigint      NOT NULL,     -- physical lines before the offset
    header_hash      text        NOT NULL,     -- BLAKE3 of the header lines (metadata included)
    tail_hash        text        NOT NULL,     -- BLAKE3 of the last <= 4 KiB before the offset
    last_growth      timestamptz NOT NULL,     -- the file's mtime when the increment was read
    committed_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    ledger_id        uuid        NOT NULL      -- the increment's ledger row
);

-- One row per loaded file and measured column present in it.
CREATE TABLE IF NOT EXISTS file_metrics (
    file_id      uuid             NOT NULL REFERENCES ingest_files (id),
    column_name  text             NOT NULL,
    value_count  bigint           NOT NULL,  -- non-null values
    null_count   bigint           NOT NULL,
    min_value    double precision,
    max_value    double precision,
    mean_value   double precision,
    stddev_value double precision,           -- sample standard deviation (n - 1)
    source_unit  text,                       -- the unit the file wrote (values are stored converted)
    missing_codes bigint NOT NULL DEFAULT 0, -- cells that held a missing-value code (counted in null_count)
    qc_step      bigint NOT NULL DEFAULT 0,  -- readings flagged by each quality test (canonical
    qc_spike     bigint NOT NULL DEFAULT 0,  -- measures; a spike on a file's last reading is
    qc_flat      bigint NOT NULL DEFAULT 0,  -- counted here when the sensor's next file finds it)
    qc_outlier   bigint NOT NULL DEFAULT 0,
    qc_gap       bigint NOT NULL DEFAULT 0,  -- readings holding the column flagged gap,
    qc_time_travel bigint NOT NULL DEFAULT 0, -- and time travel
    PRIMARY KEY (file_id, column_name)
);
ALTER TABLE file_metrics ADD COLUMN IF NOT EXISTS source_unit text;
ALTER TABLE file_metrics ADD COLUMN IF NOT EXISTS missing_codes bigint NOT NULL DEFAULT 0;
ALTER TABLE file_metrics ADD COLUMN IF NOT EXISTS qc_step bigint NOT NULL DEFAULT 0;
ALTER TABLE file_metrics ADD COLUMN IF NOT EXISTS qc_spike bigint NOT NULL DEFAULT 0;
ALTER TABLE file_metrics ADD COLUMN IF NOT EXISTS qc_flat bigint NOT NULL DEFAULT 0;
ALTER TABLE file_metrics ADD COLUMN IF NOT EXISTS qc_outlier bigint NOT NULL DEFAULT 0;
ALTER TABLE file_metrics ADD COLUMN IF NOT EXISTS qc_gap bigint NOT NULL DEFAULT 0;
ALTER TABLE file_metrics ADD COLUMN IF NOT EXISTS qc_time_travel bigint NOT NULL DEFAULT 0;

-- Quality flags of further measures (columns kept in `extra`, checked when a profile
-- gives their thresholds in [qc.<measure>]), for flagged readings only: one row per
-- reading and measure, `flags` with bit t per test (1 step, 2 spike, 4 flat,
-- 8 outlier), the reading named by (file_id, line) as in sensor_readings. Written in
-- the load's transaction; later files add spike and flat bits to it.
CREATE TABLE IF NOT EXISTS qc_measure_flags (
    file_id   uuid        NOT NULL,
    line      bigint      NOT NULL,
    ts        timestamptz NOT NULL,
    sensor_id text        NOT NULL,
    measure   text        NOT NULL,
    flags     smallint    NOT NULL,
    PRIMARY KEY (file_id, line, measure)
);
CREATE INDEX IF NOT EXISTS qc_measure_flags_sensor ON qc_measure_flags (sensor_id, measure, ts);

-- Gold layer: per sensor and UTC hour / UTC day, the count, min, max and mean of each
-- measure (NULL cells are left out of that measure's figures; `readings` counts rows),
-- and how many readings carry quality flags (`flagged`: any; `<measure>_flagged`: on
-- that measure; added last, as CREATE OR REPLACE VIEW only appends columns).
CREATE OR REPLACE VIEW sensor_hourly AS
SELECT sensor_id,
       date_trunc('hour', ts, 'UTC') AS hour,
       count(*) AS readings,
       count(temperature) AS temperature_count,
       min(temperature) AS temperature_min,
       max(temperature) AS temperature_max,
       avg(temperature) AS temperature_mean,
       count(humidity) AS humidity_count,
       min(humidity) AS humidity_min,
       max(humidity) AS humidity_max,
       avg(humidity) AS humidity_mean,
       count(pressure) AS pressure_count,
       min(pressure) AS pressure_min,
       max(pressure) AS pressure_max,
       avg(pressure) AS pressure_mean,
       count(*) FILTER (WHERE qc_flags <> 0) AS flagged,
       count(*) FILTER (WHERE qc_flags & 15 <> 0) AS temperature_flagged,
       count(*) FILTER (WHERE qc_flags & 240 <> 0) AS humidity_flagged,
       count(*) FILTER (WHERE qc_flags & 3840 <> 0) AS pressure_flagged
FROM sensor_readings
GROUP BY sensor_id, date_trunc('hour', ts, 'UTC');

CREATE OR REPLACE VIEW sensor_daily AS
SELECT sensor_id,
       date_trunc('day', ts, 'UTC') AS day,
       count(*) AS readings,
       count(temperature) AS temperature_count,
       min(temperature) AS temperature_min,
       max(temperature) AS temperature_max,
       avg(temperature) AS temperature_mean,
       count(humidity) AS humidity_count,
       min(humidity) AS humidity_min,
       max(humidity) AS humidity_max,
       avg(humidity) AS humidity_mean,
       count(pressure) AS pressure_count,
       min(pressure) AS pressure_min,
       max(pressure) AS pressure_max,
       avg(pressure) AS pressure_mean,
       count(*) FILTER (WHERE qc_flags <> 0) AS flagged,
       count(*) FILTER (WHERE qc_flags & 15 <> 0) AS temperature_flagged,
       count(*) FILTER (WHERE qc_flags & 240 <> 0) AS humidity_flagged,
       count(*) FILTER (WHERE qc_flags & 3840 <> 0) AS pressure_flagged
FROM sensor_readings
GROUP BY sensor_id, date_trunc('day', ts, 'UTC');

-- The same figures without flagged values: a value flagged by any test is left out of
-- its own measure's figures only (a flagged temperature does not hide the humidity of
-- the same reading), and a reading flagged time travel (its time is wrong) is left out
-- of every measure (masks 8207 = 15 + 8192, 8432, 12032); `readings` still counts
-- every row. A gap flag hides no value.
CREATE OR REPLACE VIEW sensor_hourly_clean AS
SELECT sensor_id,
       date_trunc('hour', ts, 'UTC') AS hour,
       count(*) AS readings,
       count(temperature) AS temperature_count,
       min(temperature) AS temperature_min,
       max(temperature) AS temperature_max,
       avg(temperature) AS temperature_mean,
       count(humidity) AS humidity_count,
       min(humidity) AS humidity_min,
       max(humidity) AS humidity_max,
       avg(humidity) AS humidity_mean,
       count(pressure) AS pressure_count,
       min(pressure) AS pressure_min,
       max(pressure) AS pressure_max,
       avg(pressure) AS pressure_mean
FROM (SELECT sensor_id, ts,
        CASE WHEN qc_flags & 8207 = 0 THEN temperature END AS temperature,
        CASE WHEN qc_flags & 8432 = 0 THEN humidity END AS humidity,
        CASE WHEN qc_flags & 12032 = 0 THEN pressure END AS pressure
      FROM sensor_readings) AS r
GROUP BY sensor_id, date_trunc('hour', ts, 'UTC');

CREATE OR REPLACE VIEW sensor_daily_clean AS
SELECT sensor_id,
       date_trunc('day', ts, 'UTC') AS day,
       count(*) AS readings,
       count(temperature) AS temperature_count,
       min(temperature) AS temperature_min,
       max(temperature) AS temperature_max,
       avg(temperature) AS temperature_mean,
       count(humidity) AS humidity_count,
       min(humidity) AS humidity_min,
       max(humidity) AS humidity_max,
       avg(humidity) AS humidity_mean,
       count(pressure) AS pressure_count,
       min(pressure) AS pressure_min,
       max(pressure) AS pressure_max,
       avg(pressure) AS pressure_mean
FROM (SELECT sensor_id, ts,
        CASE WHEN qc_flags & 8207 = 0 THEN temperature END AS temperature,
        CASE WHEN qc_flags & 8432 = 0 THEN humidity END AS humidity,
        CASE WHEN qc_flags & 12032 = 0 THEN pressure END AS pressure
      FROM sensor_readings) AS r
GROUP BY sensor_id, date_trunc('day', ts, 'UTC');

-- ---------------------------------------------------------------------------------
-- Claims (several agents on one data folder). Before reading a file an agent claims
-- it here for a short lease, renewed while it works; other agents leave a claimed file
-- alone, and take it over once the lease has run out (its agent died). Keyed by the
-- file's identity in the folder — name, inode, size, mtime, ctime — so a file dropped
-- again under the same name, or moved back into the folder, is a new claim. A division of labour only: exactly once rests on
-- ingest_files_one_load_per_content. Rows expired for an hour are deleted by the agents.
CREATE TABLE IF NOT EXISTS ingest_claims (
    file_name  text        NOT NULL,
    inode      bigint      NOT NULL,
    size_bytes bigint      NOT NULL,
    mtime_ns   bigint      NOT NULL,          -- modification time, ns since the Unix epoch
    ctime_ns   bigint      NOT NULL,          -- status-change time (a rename sets it), ns
    agent      text        NOT NULL,          -- AGENT_ID of the holder
    claimed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    expires_at timestamptz NOT NULL,          -- the server's clock; renewed while worked on
    PRIMARY KEY (file_name, inode, size_bytes, mtime_ns, ctime_ns)
);
CREATE INDEX IF NOT EXISTS ingest_claims_expires ON ingest_claims (expires_at);
