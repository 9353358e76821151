//! Quality control in the reading pass: rows wait in a buffer of one batch so that
//! the sensors new in it are looked up in one round trip, then go through the
//! [`Judge`]. A sensor's state is remembered between files ([`QcMemory`]): when the
//! database's last reading of the sensor before a file is the one the memory ends
//! with, the file continues from the memory (one row read per sensor); otherwise the
//! sensor's last readings are read and replayed.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use super::inspect::BATCH_ROWS;
use crate::enrich::EnrichedRow;
use crate::qc::{
    HistoryQuery, HistoryReading, Judge, MAX_SENSORS, QcConfig, QcSummary, SensorMemory,
};
use crate::sink::{SinkError, Store};

/// Sensors remembered between files; past this the memory starts again empty.
const MAX_REMEMBERED: usize = MAX_SENSORS;

/// What quality control remembers of each sensor after the last file that committed
/// its readings; shared by the workers of a pipeline.
#[derive(Debug, Default)]
pub(super) struct QcMemory(Mutex<HashMap<String, SensorMemory>>);

impl QcMemory {
    /// Keeps what a committed file's QC knew of its sensors.
    pub(super) fn remember(&self, memories: Vec<(String, SensorMemory)>) {
        if memories.is_empty() {
            return;
        }
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() + memories.len() > MAX_REMEMBERED {
            map.clear();
        }
        map.extend(memories);
    }

    fn recall(&self, sensor: &str, cfg: &QcConfig) -> Option<SensorMemory> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.get(sensor).filter(|m| m.cfg() == cfg).cloned()
    }
}

/// Quality control for one attempt: its thresholds, the store and runtime the reader
/// (a blocking thread) asks for the sensors' history, and the pipeline's memory.
pub(super) struct QcRun {
    pub cfg: QcConfig,
    pub store: Arc<dyn Store>,
    pub runtime: tokio::runtime::Handle,
    pub memory: Arc<QcMemory>,
    /// The id the file's readings are stored under.
    pub file_id: String,
}

/// The QC stage of one reading pass.
pub(super) struct QcStage<'a> {
    run: &'a QcRun,
    judge: Judge<EnrichedRow>,
    buffer: Vec<EnrichedRow>,
}

impl<'a> QcStage<'a> {
    pub(super) fn new(run: &'a QcRun) -> Self {
        Self {
            run,
            judge: Judge::new(run.cfg),
            buffer: Vec::with_capacity(BATCH_ROWS),
        }
    }

    /// Takes a row; false when the sink stopped taking rows.
    pub(super) fn take(
        &mut self,
        row: EnrichedRow,
        send: &mut impl FnMut(EnrichedRow) -> bool,
    ) -> Result<bool, SinkError> {
        // Once every sensor seen so far is known, rows go straight to the judge; a new
        // sensor starts a buffer (and everything after it waits there, in order).
        if self.buffer.is_empty() && self.judge.knows(&row.reading.sensor_id) {
            return Ok(match self.judge.push(row, no_history)? {
                Some(decided) => send(decided),
                None => true,
            });
        }
        self.buffer.push(row);
        if self.buffer.len() < BATCH_ROWS {
            return Ok(true);
        }
        self.drain(send)
    }

    /// Judges the buffered rows, after looking up the sensors new in them (each before
    /// its first time here), and sends the readings now decided.
    pub(super) fn drain(
        &mut self,
        send: &mut impl FnMut(EnrichedRow) -> bool,
    ) -> Result<bool, SinkError> {
        let mut new: Vec<(String, DateTime<Utc>)> = Vec::new();
        let mut seen: HashSet<&str> = HashSet::new();
        for row in &self.buffer {
            let sensor = row.reading.sensor_id.as_str();
            if new.len() < self.judge.room() && !self.judge.knows(sensor) && seen.insert(sensor) {
                new.push((sensor.to_owned(), row.reading.timestamp));
            }
        }
        if !new.is_empty() {
            self.look_up(new)?;
        }
        for row in self.buffer.drain(..) {
            if let Some(row) = self.judge.push(row, no_history)?
                && !send(row)
            {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Starts following `new` sensors (each with its first time here): a remembered
    /// one from its memory and the readings stored since, when the database still
    /// holds the memory's last reading; the others from their last stored readings.
    fn look_up(&mut self, new: Vec<(String, DateTime<Utc>)>) -> Result<(), SinkError> {
        let run = self.run;
        let limit = self.judge.history_len();
        let (mut remembered, mut unknown) = (Vec::new(), Vec::new());
        for (sensor, before) in new {
            let query = |from| HistoryQuery {
                sensor: sensor.clone(),
                from,
                before,
            };
            match run.memory.recall(&sensor, &run.cfg) {
                Some(memory) if memory.ts < before => {
                    remembered.push((query(Some(memory.ts)), memory));
                }
                _ => unknown.push(query(None)),
            }
        }
        if !remembered.is_empty() {
            let asked: Vec<HistoryQuery> = remembered.iter().map(|(q, _)| q.clone()).collect();
            let since = run
                .runtime
                .block_on(run.store.recent_readings(&asked, limit))?;
            for ((query, memory), since) in remembered.into_iter().zip(since) {
                if !self.judge.resume(&query.sensor, memory, since) {
                    unknown.push(HistoryQuery {
                        from: None,
                        ..query
                    });
                }
            }
        }
        if !unknown.is_empty() {
            let histories = run
                .runtime
                .block_on(run.store.recent_readings(&unknown, limit))?;
            for (query, history) in unknown.iter().zip(histories) {
                self.judge.start(&query.sensor, history);
            }
        }
        Ok(())
    }

    /// The readings still held back, what the file's QC found, and what to remember of
    /// its sensors once it commits.
    pub(super) fn finish(self) -> (Vec<EnrichedRow>, QcSummary, Vec<(String, SensorMemory)>) {
        self.judge.finish_remembering(&self.run.file_id)
    }
}

/// The history of a sensor already looked up by [`QcStage::drain`]: never asked for.
fn no_history(_: &str, _: DateTime<Utc>, _: u32) -> Result<Vec<HistoryReading>, SinkError> {
    Ok(Vec::new())
}
