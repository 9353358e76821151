//! Quality control in the reading pass: rows wait in a buffer of one batch so that
//! the sensors new in it are looked up in one round trip, then go through the
//! [`Judge`]. A sensor's state is remembered between files ([`QcMemory`]): when the
//! database's last reading of the sensor before a file is the one the memory ends
//! with, the file continues from the memory (one row read per sensor); otherwise the
//! sensor's last readings are read and replayed.
//!
//! Small files committed in groups are judged by the committer instead
//! ([`judge_group`]), one after the other in time order, just before their group loads:
//! a file continues from the file of its group (or the group before) that came right
//! before it, whether committed yet or not, and a whole group's sensors are looked up
//! in one round trip. Judged while being read side by side, each of them would miss
//! the others and read up to 240 readings of each of its sensors back from the
//! database.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use crate::enrich::EnrichedRow;
use crate::qc::{
    HistoryQuery, HistoryReading, Judge, MAX_SENSORS, QcConfig, QcSummary, SensorMemory,
};
use crate::sink::{GroupFile, SinkError, Store};

/// Rows per batch sent from the reader to the sink; the QC stage buffers as many before
/// it looks up the history of the new sensors among them.
pub(super) const BATCH_ROWS: usize = 2048;

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

    /// Forgets what ends with a reading of `files`: files judged but not stored after
    /// all (refused, duplicates, their group failed).
    pub(super) fn forget(&self, files: &HashSet<String>) {
        if files.is_empty() {
            return;
        }
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, m| !files.contains(&m.file_id));
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
            judge: Judge::new(run.cfg.clone()),
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
        // Only what lies within the history span counts, and only that is read.
        let span = run.cfg.horizon();
        for (sensor, before) in new {
            let query = |from| HistoryQuery {
                sensor: sensor.clone(),
                from: Some(from),
                before,
                further: run.cfg.further.clone(),
            };
            match run.memory.recall(&sensor, &run.cfg) {
                Some(memory) if memory.ts < before && memory.ts >= before - span => {
                    remembered.push((query(memory.ts), memory));
                }
                _ => unknown.push(query(before - span)),
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
                        from: Some(query.before - span),
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

/// How the committer starts following one sensor of a grouped file.
enum Start {
    /// From the previous file of the group that held the sensor, judged just before.
    Group,
    /// From the pipeline's memory, if the database agrees with it.
    Remembered(Box<SensorMemory>),
    /// From the sensor's last stored readings.
    Stored,
}

/// A start once the database has answered.
enum Ready {
    Group,
    /// The memory's last reading is not stored yet (its file loads in a group now
    /// committing), and nothing else of the sensor came after it.
    Continue(SensorMemory),
    /// The memory, and the readings stored since, starting with its last one.
    Resume(SensorMemory, Vec<HistoryReading>),
    History(Vec<HistoryReading>),
}

/// Judges the rows of a group's files that have quality control on (each with its
/// thresholds), in the order given (the committer's: by first reading time), and
/// sets each file's flags and QC summary. Every file continues from the one before it
/// of each sensor; the sensors that start in this group are looked up in one round
/// trip (two when a memory proves stale). What the group leaves of each sensor is
/// remembered at once, for the next group: [`QcMemory::forget`] takes it back if its
/// file is not stored.
pub(super) async fn judge_group(
    store: &dyn Store,
    memory: &QcMemory,
    files: &mut [(&mut GroupFile, QcConfig)],
) -> Result<(), SinkError> {
    let plans = plan_starts(memory, files);

    // One round trip for every sensor that starts from the database.
    // A window's worth first: that is all the tests need unless a flat run fills it
    // (then the rest is read in a second round), and a quarter of the full history.
    let short = files
        .iter()
        .map(|(_, c)| c.window.max(2))
        .max()
        .unwrap_or(0);
    let limit = files
        .iter()
        .map(|(_, c)| c.history_len())
        .max()
        .unwrap_or(0);
    let (asked, at) = history_queries(files, &plans);
    let remembered = at
        .iter()
        .filter(|(f, k)| matches!(plans[*f][*k].2, Start::Remembered(_)))
        .count();
    let stored = asked.len() - remembered;
    let answers = if asked.is_empty() {
        Vec::new()
    } else {
        store.recent_readings(&asked, short).await?
    };
    let mut ready: Vec<Vec<(String, Ready)>> = plans
        .into_iter()
        .map(|plan| {
            plan.into_iter()
                .map(|(sensor, _, start)| {
                    let ready = match start {
                        Start::Group => Ready::Group,
                        Start::Remembered(m) => Ready::Continue(*m),
                        Start::Stored => Ready::History(Vec::new()),
                    };
                    (sensor, ready)
                })
                .collect()
        })
        .collect();
    // A memory the database disagrees with (something else stored after its last
    // reading, or more than a window's worth), or a window that may not hold a flat
    // run's start: the sensor's full history instead.
    let mut stale = Vec::new();
    let mut stale_at = Vec::new();
    for ((f, k), (query, answer)) in at.into_iter().zip(asked.into_iter().zip(answers)) {
        let (_, slot) = &mut ready[f][k];
        match std::mem::replace(slot, Ready::Group) {
            Ready::Continue(m) if answer.is_empty() => *slot = Ready::Continue(m),
            Ready::Continue(m) if answer[0].file_id == m.file_id && answer[0].line == m.line => {
                *slot = Ready::Resume(m, answer);
            }
            Ready::Continue(_) => {
                stale.push(HistoryQuery {
                    from: Some(query.before - files[f].1.horizon()),
                    ..query
                });
                stale_at.push((f, k));
            }
            _ if answer.len() as u32 >= short && window_not_enough(&answer, short) => {
                stale.push(query);
                stale_at.push((f, k));
            }
            _ => *slot = Ready::History(last_n(answer, files[f].1.history_len())),
        }
    }
    tracing::debug!(
        files = files.len(),
        remembered,
        stored,
        stale = stale.len(),
        "quality control of a group: sensors looked up"
    );
    if !stale.is_empty() {
        let answers = store.recent_readings(&stale, limit).await?;
        for ((f, k), answer) in stale_at.into_iter().zip(answers) {
            ready[f][k].1 = Ready::History(last_n(answer, files[f].1.history_len()));
        }
    }

    // The files in order, each continuing from the one before.
    let mut left: HashMap<String, SensorMemory> = HashMap::new();
    for ((file, cfg), plan) in files.iter_mut().zip(ready) {
        judge_file(file, cfg.clone(), plan, &mut left)?;
    }
    memory.remember(left.into_iter().collect());
    Ok(())
}

/// Each file's sensors, with their first reading and where each starts from.
type SensorStarts = Vec<(String, DateTime<Utc>, Start)>;

/// Where each file's sensors start from, judging by time alone: the file before it in
/// the group, what is remembered of the sensor, or the database.
fn plan_starts(memory: &QcMemory, files: &[(&mut GroupFile, QcConfig)]) -> Vec<SensorStarts> {
    let mut latest: HashMap<String, (DateTime<Utc>, QcConfig)> = HashMap::new();
    let mut plans: Vec<SensorStarts> = Vec::with_capacity(files.len());
    for (file, cfg) in files.iter() {
        let mut plan = Vec::new();
        for (sensor, first, last) in sensor_spans(&file.rows) {
            // Only what lies within the history span counts (older state is forgotten
            // by the judge anyway), and only that is read.
            let since = first - cfg.horizon();
            let start = match latest.get(&sensor) {
                Some((ts, c)) if c == cfg && *ts < first => Start::Group,
                Some(_) => Start::Stored,
                None => match memory.recall(&sensor, cfg) {
                    Some(m) if m.ts < first && m.ts >= since => Start::Remembered(Box::new(m)),
                    _ => Start::Stored,
                },
            };
            latest.insert(sensor.clone(), (last, cfg.clone()));
            plan.push((sensor, first, start));
        }
        plans.push(plan);
    }
    plans
}

/// The history to read for every sensor that does not start from the group: from its
/// memory's last reading, or the history span before its first reading; with each,
/// where its sensor is in `plans` (file, sensor).
fn history_queries(
    files: &[(&mut GroupFile, QcConfig)],
    plans: &[SensorStarts],
) -> (Vec<HistoryQuery>, Vec<(usize, usize)>) {
    let mut asked = Vec::new();
    let mut at = Vec::new();
    for (f, plan) in plans.iter().enumerate() {
        let span = files[f].1.horizon();
        for (k, (sensor, before, start)) in plan.iter().enumerate() {
            let from = match start {
                Start::Group => continue,
                Start::Remembered(m) => Some(m.ts),
                Start::Stored => Some(*before - span),
            };
            asked.push(HistoryQuery {
                sensor: sensor.clone(),
                from,
                before: *before,
                further: files[f].1.further.clone(),
            });
            at.push((f, k));
        }
    }
    (asked, at)
}

/// Judges the rows of one file of a group, each sensor started as `plan` says (from
/// what the files before left in `left`, which gets what this one leaves), and sets
/// the file's flags and QC summary.
fn judge_file(
    file: &mut GroupFile,
    cfg: QcConfig,
    plan: Vec<(String, Ready)>,
    left: &mut HashMap<String, SensorMemory>,
) -> Result<(), SinkError> {
    let mut judge = Judge::new(cfg);
    for (sensor, ready) in plan {
        let started = match ready {
            Ready::Group => left
                .remove(&sensor)
                .is_some_and(|m| judge.continue_from(&sensor, m)),
            Ready::Continue(m) => judge.continue_from(&sensor, m),
            Ready::Resume(m, since) => judge.resume(&sensor, m, since),
            Ready::History(history) => {
                judge.start(&sensor, history);
                true
            }
        };
        if !started {
            // Not expected (the memory's thresholds were checked when it was
            // recalled); the sensor then starts afresh rather than from a guess.
            judge.start(&sensor, Vec::new());
        }
    }
    let rows = std::mem::take(&mut file.rows);
    let mut judged = Vec::with_capacity(rows.len());
    for row in rows {
        if let Some(row) = judge.push(row, no_history)? {
            judged.push(row);
        }
    }
    let file_id = file.attempt.id.hyphenated().to_string();
    let (held, summary, memories) = judge.finish_remembering(&file_id);
    judged.extend(held);
    file.rows = judged;
    file.stats.qc = summary;
    left.extend(memories);
    Ok(())
}

/// Each sensor of `rows` in order of first appearance (up to [`MAX_SENSORS`]), with
/// the time of its first reading and of its latest.
fn sensor_spans(rows: &[EnrichedRow]) -> Vec<(String, DateTime<Utc>, DateTime<Utc>)> {
    let mut spans: Vec<(String, DateTime<Utc>, DateTime<Utc>)> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for row in rows {
        let (sensor, ts) = (row.reading.sensor_id.as_str(), row.reading.timestamp);
        match index.get(sensor) {
            Some(&i) => spans[i].2 = spans[i].2.max(ts),
            None if spans.len() < MAX_SENSORS => {
                index.insert(sensor, spans.len());
                spans.push((sensor.to_owned(), ts, ts));
            }
            None => {}
        }
    }
    spans
}

/// The last `n` of `readings` (oldest first).
fn last_n(mut readings: Vec<HistoryReading>, n: u32) -> Vec<HistoryReading> {
    let extra = readings.len().saturating_sub(n as usize);
    readings.drain(..extra);
    readings
}

/// Whether the last readings in `history` (a window's worth) may not tell the tests
/// all they need, for some measure: it holds one value throughout (a flat run, whose
/// start only older readings tell), or it is missing from some of them (older values
/// would fill its outlier window of `window`).
fn window_not_enough(history: &[HistoryReading], window: u32) -> bool {
    (0..3).any(|m| {
        let mut values = history.iter().filter_map(|h| h.values[m]);
        let Some(first) = values.next() else {
            return false;
        };
        let (mut count, mut flat) = (1u32, true);
        for v in values {
            count += 1;
            flat &= v == first;
        }
        flat || count < window
    })
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, TimeDelta, Utc};

    use super::window_not_enough;
    use crate::qc::HistoryReading;

    fn history(values: impl Fn(usize) -> [Option<f64>; 3]) -> Vec<HistoryReading> {
        (0..60)
            .map(|i| HistoryReading {
                file_id: "f".into(),
                line: i as i64 + 2,
                ts: DateTime::<Utc>::UNIX_EPOCH + TimeDelta::minutes(i as i64),
                values: values(i),
                flags: 0,
                further: Vec::new(),
            })
            .collect()
    }

    /// A window's worth of history is enough unless a measure is flat throughout or
    /// missing from some readings; a measure never present asks for nothing more.
    #[test]
    fn a_window_of_history_is_enough_unless_flat_or_patchy() {
        let varied = |i: usize| 20.0 + (i % 7) as f64 * 0.1;
        assert!(!window_not_enough(
            &history(|i| [Some(varied(i)), None, None]),
            60
        ));
        assert!(window_not_enough(
            &history(|i| [Some(varied(i)), Some(55.0), None]),
            60
        ));
        let patchy = |i: usize| {
            [
                Some(varied(i)),
                i.is_multiple_of(2).then_some(varied(i)),
                None,
            ]
        };
        assert!(window_not_enough(&history(patchy), 60));
        assert!(!window_not_enough(&history(patchy), 30));
    }
}
