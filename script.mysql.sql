-- sensor-ingest schema for MariaDB (10.6 or later) and MySQL (8.0.17 or later). It
-- mirrors script.sql (the PostgreSQL schema) table for table and column for column;
-- only the types differ:
--   uuid        -> CHAR(36), hyphenated
--   timestamptz -> DATETIME(6) holding UTC (every session of the agent sets
--                  time_zone = '+00:00')
--   jsonb       -> JSON (MariaDB: LONGTEXT checked to be JSON)
--   text        -> VARCHAR in utf8mb4_bin, so names and sensor ids compare exactly as
--                  in PostgreSQL (case and accents matter)
-- Applied by the agent at startup, statement by statement, under a named lock
-- (GET_LOCK) so that several agents starting together apply it once; every statement
-- is idempotent. MariaDB and MySQL commit DDL at once: there is no transaction around
-- it, so a statement that fails leaves the ones before it applied, and the next start
-- goes on from there.

-- The ledger: one row per attempt outcome. At most one 'loaded' or 'partial' row per
-- content hash is what makes a file's content load exactly once, whatever its name.
-- InnoDB has no partial unique index: `loaded_hash` holds the hash only while the row
-- is loaded or partial (NULL otherwise, and NULLs never collide), and it is unique.
CREATE TABLE IF NOT EXISTS ingest_files (
    id              CHAR(36)      CHARACTER SET ascii NOT NULL PRIMARY KEY,
    file_name       VARCHAR(1024) NOT NULL,
    content_hash    VARCHAR(128)  CHARACTER SET ascii NOT NULL,   -- BLAKE3, hex
    size_bytes      BIGINT        NOT NULL,
    status          VARCHAR(16)   CHARACTER SET ascii NOT NULL,
    row_count       BIGINT        NOT NULL DEFAULT 0, -- rows loaded (loaded, partial) or read (quarantined)
    rejected_rows   BIGINT        NOT NULL DEFAULT 0, -- bad rows (quarantined), or left out of a partial load
    error_summary   TEXT,
    duplicate_of    CHAR(36)      CHARACTER SET ascii,
    first_timestamp DATETIME(6),
    last_timestamp  DATETIME(6),
    started_at      DATETIME(6)   NOT NULL,
    finished_at     DATETIME(6)   NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    archived_as     VARCHAR(1024),                    -- name in processed/ or quarantine/
    archived_at     DATETIME(6),
    agent           VARCHAR(255)  NOT NULL,           -- AGENT_ID that wrote the row
    profile         VARCHAR(255),                     -- the source profile that read the file
    profile_hash    VARCHAR(128)  CHARACTER SET ascii, -- BLAKE3 of its text ('builtin': the default)
    -- The digest of an object's bucket, key, ETag, size (NULL: a file). Databases
    -- created before it gain it and its index at startup (mysql::add_source_identity).
    source_identity CHAR(32)      CHARACTER SET ascii,
    loaded_hash     VARCHAR(128)  CHARACTER SET ascii
        AS (CASE WHEN status IN ('loaded', 'partial') THEN content_hash END) STORED,
    CONSTRAINT ingest_files_status CHECK (status IN ('loaded', 'partial', 'quarantined', 'duplicate')),
    CONSTRAINT ingest_files_duplicate_of FOREIGN KEY (duplicate_of) REFERENCES ingest_files (id),
    UNIQUE KEY ingest_files_one_load_per_content (loaded_hash),
    KEY ingest_files_hash (content_hash),
    KEY ingest_files_name (file_name(255)),
    KEY ingest_files_finished (finished_at),
    KEY ingest_files_source (source_identity)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- One row per valid CSV row: canonical values as read, derived values beside them,
-- other columns in `extra`, and lineage (file, physical line, ingest time). As in
-- script.sql, file_id is not declared a foreign key: readings are only written in the
-- transaction of their ledger row.
CREATE TABLE IF NOT EXISTS sensor_readings (
    file_id          CHAR(36)     CHARACTER SET ascii NOT NULL,
    line             BIGINT       NOT NULL,  -- physical line in the file; header = 1
    ts               DATETIME(6)  NOT NULL,  -- UTC
    sensor_id        VARCHAR(256) NOT NULL,  -- at most 256 bytes (validate.rs)
    temperature      DOUBLE,                 -- °C
    humidity         DOUBLE,                 -- %RH
    pressure         DOUBLE,                 -- hPa
    temperature_k    DOUBLE,
    temperature_norm DOUBLE,                 -- (value - min) / (max - min) of the configured range
    humidity_norm    DOUBLE,
    pressure_norm    DOUBLE,
    extra            JSON,                   -- other columns, as a JSON object
    ingested_at      DATETIME(6)  NOT NULL,  -- the load transaction's time
    qc_flags         SMALLINT     NOT NULL DEFAULT 0, -- quality flags, bits as in script.sql
    PRIMARY KEY (file_id, line),
    KEY sensor_readings_sensor_ts (sensor_id, ts),
    KEY sensor_readings_ts (ts)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- One row per loaded file and measured column present in it.
CREATE TABLE IF NOT EXISTS file_metrics (
    file_id        CHAR(36)     CHARACTER SET ascii NOT NULL,
    column_name    VARCHAR(255) NOT NULL,
    value_count    BIGINT       NOT NULL,  -- non-null values
    null_count     BIGINT       NOT NULL,
    min_value      DOUBLE,
    max_value      DOUBLE,
    mean_value     DOUBLE,
    stddev_value   DOUBLE,                 -- sample standard deviation (n - 1)
    source_unit    VARCHAR(64),            -- the unit the file wrote (values are stored converted)
    missing_codes  BIGINT       NOT NULL DEFAULT 0, -- cells that held a missing-value code
    qc_step        BIGINT       NOT NULL DEFAULT 0, -- readings flagged by each quality test
    qc_spike       BIGINT       NOT NULL DEFAULT 0,
    qc_flat        BIGINT       NOT NULL DEFAULT 0,
    qc_outlier     BIGINT       NOT NULL DEFAULT 0,
    qc_gap         BIGINT       NOT NULL DEFAULT 0,
    qc_time_travel BIGINT       NOT NULL DEFAULT 0,
    PRIMARY KEY (file_id, column_name),
    CONSTRAINT file_metrics_file FOREIGN KEY (file_id) REFERENCES ingest_files (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- Claims on files by agents sharing one data folder (see src/sink/claim.rs): a lease
-- on the server's clock, renewed while the agent works on the file.
CREATE TABLE IF NOT EXISTS ingest_claims (
    file_name  VARCHAR(512) NOT NULL,
    inode      BIGINT       NOT NULL,
    size_bytes BIGINT       NOT NULL,
    mtime_ns   BIGINT       NOT NULL,   -- modification time, ns since the Unix epoch
    ctime_ns   BIGINT       NOT NULL,   -- status-change time (a rename sets it), ns
    agent      VARCHAR(255) NOT NULL,   -- AGENT_ID of the holder
    claimed_at DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    expires_at DATETIME(6)  NOT NULL,   -- the server's clock; renewed while worked on
    PRIMARY KEY (file_name, inode, size_bytes, mtime_ns, ctime_ns),
    KEY ingest_claims_expires (expires_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- Files followed in place (append mode, docs/append.md): one row per file name, written
-- in the InnoDB transaction of each increment's ledger row, so the offset commits with
-- the rows. An increment commits only while the row still names the increment it
-- started from (ledger_id): two attempts from one position cannot both advance it.
-- 768 characters of utf8mb4 are InnoDB's 3,072-byte limit for a key.
CREATE TABLE IF NOT EXISTS followed_files (
    file_name        VARCHAR(768) NOT NULL PRIMARY KEY, -- the name in the data folder
    device           BIGINT       NOT NULL,   -- device and inode read (another inode: rotated)
    inode            BIGINT       NOT NULL,
    committed_offset BIGINT       NOT NULL,   -- bytes loaded or refused, always after a newline
    committed_lines  BIGINT       NOT NULL,   -- physical lines before the offset
    header_hash      VARCHAR(128) CHARACTER SET ascii NOT NULL, -- BLAKE3 of the header lines
    tail_hash        VARCHAR(128) CHARACTER SET ascii NOT NULL, -- BLAKE3 of the last <= 4 KiB
    last_growth      DATETIME(6)  NOT NULL,   -- the file's mtime when the increment was read
    committed_at     DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    ledger_id        CHAR(36)     CHARACTER SET ascii NOT NULL -- the increment's ledger row
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- Quality flags of further measures (columns kept in `extra`, checked when a profile
-- gives their thresholds in [qc.<measure>]), for flagged readings only: one row per
-- reading and measure, `flags` with bit t per test (1 step, 2 spike, 4 flat,
-- 8 outlier), the reading named by (file_id, line) as in sensor_readings. Written in
-- the load's transaction; later files add spike and flat bits to it.
CREATE TABLE IF NOT EXISTS qc_measure_flags (
    file_id   CHAR(36)     CHARACTER SET ascii NOT NULL,
    line      BIGINT       NOT NULL,
    ts        DATETIME(6)  NOT NULL,
    sensor_id VARCHAR(256) NOT NULL,
    measure   VARCHAR(255) NOT NULL,
    flags     SMALLINT     NOT NULL,
    PRIMARY KEY (file_id, line, measure),
    KEY qc_measure_flags_sensor (sensor_id, measure, ts)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- Gold layer: per sensor and UTC hour / UTC day, the count, min, max and mean of each
-- measure (NULL cells are left out of that measure's figures; `readings` counts rows),
-- and how many readings carry quality flags (`flagged`: any; `<measure>_flagged`: on
-- that measure). Periods are DATETIME(6) in UTC, truncated to the hour or the day.
CREATE OR REPLACE VIEW sensor_hourly AS
SELECT sensor_id,
       CAST(DATE_FORMAT(ts, '%Y-%m-%d %H:00:00') AS DATETIME(6)) AS hour,
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
       count(CASE WHEN qc_flags <> 0 THEN 1 END) AS flagged,
       count(CASE WHEN qc_flags & 15 <> 0 THEN 1 END) AS temperature_flagged,
       count(CASE WHEN qc_flags & 240 <> 0 THEN 1 END) AS humidity_flagged,
       count(CASE WHEN qc_flags & 3840 <> 0 THEN 1 END) AS pressure_flagged
FROM sensor_readings
GROUP BY sensor_id, CAST(DATE_FORMAT(ts, '%Y-%m-%d %H:00:00') AS DATETIME(6));

CREATE OR REPLACE VIEW sensor_daily AS
SELECT sensor_id,
       CAST(DATE(ts) AS DATETIME(6)) AS day,
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
       count(CASE WHEN qc_flags <> 0 THEN 1 END) AS flagged,
       count(CASE WHEN qc_flags & 15 <> 0 THEN 1 END) AS temperature_flagged,
       count(CASE WHEN qc_flags & 240 <> 0 THEN 1 END) AS humidity_flagged,
       count(CASE WHEN qc_flags & 3840 <> 0 THEN 1 END) AS pressure_flagged
FROM sensor_readings
GROUP BY sensor_id, CAST(DATE(ts) AS DATETIME(6));

-- The same figures without flagged values: a value flagged by any test is left out of
-- its own measure's figures only, and a reading flagged time travel (its time is
-- wrong) is left out of every measure (masks 8207 = 15 + 8192, 8432, 12032);
-- `readings` still counts every row. A gap flag hides no value.
CREATE OR REPLACE VIEW sensor_hourly_clean AS
SELECT sensor_id,
       CAST(DATE_FORMAT(ts, '%Y-%m-%d %H:00:00') AS DATETIME(6)) AS hour,
       count(*) AS readings,
       count(CASE WHEN qc_flags & 8207 = 0 THEN temperature END) AS temperature_count,
       min(CASE WHEN qc_flags & 8207 = 0 THEN temperature END) AS temperature_min,
       max(CASE WHEN qc_flags & 8207 = 0 THEN temperature END) AS temperature_max,
       avg(CASE WHEN qc_flags & 8207 = 0 THEN temperature END) AS temperature_mean,
       count(CASE WHEN qc_flags & 8432 = 0 THEN humidity END) AS humidity_count,
       min(CASE WHEN qc_flags & 8432 = 0 THEN humidity END) AS humidity_min,
       max(CASE WHEN qc_flags & 8432 = 0 THEN humidity END) AS humidity_max,
       avg(CASE WHEN qc_flags & 8432 = 0 THEN humidity END) AS humidity_mean,
       count(CASE WHEN qc_flags & 12032 = 0 THEN pressure END) AS pressure_count,
       min(CASE WHEN qc_flags & 12032 = 0 THEN pressure END) AS pressure_min,
       max(CASE WHEN qc_flags & 12032 = 0 THEN pressure END) AS pressure_max,
       avg(CASE WHEN qc_flags & 12032 = 0 THEN pressure END) AS pressure_mean
FROM sensor_readings
GROUP BY sensor_id, CAST(DATE_FORMAT(ts, '%Y-%m-%d %H:00:00') AS DATETIME(6));

CREATE OR REPLACE VIEW sensor_daily_clean AS
SELECT sensor_id,
       CAST(DATE(ts) AS DATETIME(6)) AS day,
       count(*) AS readings,
       count(CASE WHEN qc_flags & 8207 = 0 THEN temperature END) AS temperature_count,
       min(CASE WHEN qc_flags & 8207 = 0 THEN temperature END) AS temperature_min,
       max(CASE WHEN qc_flags & 8207 = 0 THEN temperature END) AS temperature_max,
       avg(CASE WHEN qc_flags & 8207 = 0 THEN temperature END) AS temperature_mean,
       count(CASE WHEN qc_flags & 8432 = 0 THEN humidity END) AS humidity_count,
       min(CASE WHEN qc_flags & 8432 = 0 THEN humidity END) AS humidity_min,
       max(CASE WHEN qc_flags & 8432 = 0 THEN humidity END) AS humidity_max,
       avg(CASE WHEN qc_flags & 8432 = 0 THEN humidity END) AS humidity_mean,
       count(CASE WHEN qc_flags & 12032 = 0 THEN pressure END) AS pressure_count,
       min(CASE WHEN qc_flags & 12032 = 0 THEN pressure END) AS pressure_min,
       max(CASE WHEN qc_flags & 12032 = 0 THEN pressure END) AS pressure_max,
       avg(CASE WHEN qc_flags & 12032 = 0 THEN pressure END) AS pressure_mean
FROM sensor_readings
GROUP BY sensor_id, CAST(DATE(ts) AS DATETIME(6));
