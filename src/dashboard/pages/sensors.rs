//! `/sensors` (silent ones marked) and `/sensor?id=` (charts over a range).

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};

use super::{Dashboard, Params, ask, encode, render};
use crate::dashboard::chart::{Series, time_chart};
use crate::dashboard::range;
use crate::dashboard::views::{self, SensorLine};
use crate::ops::status::human_age;
use crate::sink::dashboard::{Band, SeriesPoint};

/// `/sensors`: every sensor with its last reading, silent ones marked.
pub async fn sensors(State(d): State<Dashboard>, headers: HeaderMap) -> Response {
    let now = Utc::now();
    let mut page = views::Sensors {
        layout: d.layout(&headers, now),
        error: None,
        sensors: Vec::new(),
    };
    match ask(d.inner.db.sensors(now)).await {
        Ok(list) => {
            page.sensors = list
                .iter()
                .map(|s| SensorLine {
                    id: s.sensor_id.clone(),
                    href: format!("/sensor?id={}", encode(&s.sensor_id)),
                    last: views::time(s.last_reading),
                    ago: human_age((now - s.last_reading).num_seconds() as f64),
                    day_readings: s.day_readings,
                    interval: s
                        .usual_interval_seconds()
                        .map_or_else(String::new, human_age),
                    silent: range::silent(s, now),
                })
                .collect();
        }
        Err(e) => page.error = Some(e),
    }
    render(&page)
}

/// `/sensor?id=&range=` or `&from=&to=`: a sensor's three charts; a bad range shows
/// the default one and says why.
pub async fn sensor(State(d): State<Dashboard>, headers: HeaderMap, Query(p): Params) -> Response {
    let Some(id) = p.get("id").filter(|id| !id.is_empty()) else {
        return d.message(
            &headers,
            StatusCode::NOT_FOUND,
            "No sensor",
            "Pick a sensor on the sensors page.".to_owned(),
        );
    };
    let now = Utc::now();
    let (span, mut error) = range::parse(
        p.get("range").map(String::as_str),
        p.get("from").map(String::as_str),
        p.get("to").map(String::as_str),
        now,
    );
    let bucket = span.bucket_seconds();
    let points = match ask(d.inner.db.series(id, span.from, span.to, bucket)).await {
        Ok(points) => points,
        Err(e) => {
            error = Some(e);
            Vec::new()
        }
    };
    let readings = points.iter().map(|p| p.readings).sum();
    // Per measure; a reading flagged on two measures counts on both charts.
    let flagged = points.iter().map(|p| p.flagged.iter().sum::<u64>()).sum();
    let charts = Charts {
        points: &points,
        from: span.from.timestamp(),
        to: span.to.timestamp(),
        bucket,
        gap: join_gap(&points, bucket),
    };
    let ranges = range_links(id, &span);
    let input = |t: DateTime<Utc>| t.format("%Y-%m-%dT%H:%M").to_string();
    let page = views::Sensor {
        layout: d.layout(&headers, now),
        id: id.clone(),
        ranges,
        from_input: input(span.from),
        to_input: input(span.to),
        from: views::time(span.from),
        to: views::time(span.to),
        error,
        readings,
        bucket_note: if bucket > 1 {
            format!("averaged over {} buckets", human_age(f64::from(bucket)))
        } else {
            String::new()
        },
        flagged,
        temperature: charts.draw("Temperature", "°C", "#c8343a", |p| p.temperature, 0),
        humidity: charts.draw("Humidity", "%RH", "#1f5fbf", |p| p.humidity, 1),
        pressure: charts.draw("Pressure", "hPa", "#6b4bb5", |p| p.pressure, 2),
    };
    render(&page)
}

/// How far apart two points may be and still be joined: three buckets or three usual
/// spacings, whichever is more.
fn join_gap(points: &[SeriesPoint], bucket: u32) -> i64 {
    let mut steps: Vec<i64> = points
        .windows(2)
        .map(|w| (w[1].at - w[0].at).num_seconds())
        .collect();
    steps.sort_unstable();
    let usual = steps.get(steps.len() / 2).copied().unwrap_or(0);
    3 * usual.max(i64::from(bucket))
}

/// The links to the named ranges, the one shown marked.
fn range_links(id: &str, span: &range::Span) -> Vec<(&'static str, String, bool)> {
    range::NAMED
        .iter()
        .map(|(name, _)| {
            (
                *name,
                format!("/sensor?id={}&range={name}", encode(id)),
                span.named == Some(*name),
            )
        })
        .collect()
}

/// A sensor's points over `[from, to)` (unix seconds), in buckets of `bucket` seconds,
/// drawn one measure to a chart.
struct Charts<'a> {
    points: &'a [SeriesPoint],
    from: i64,
    to: i64,
    bucket: u32,
    gap: i64,
}

impl Charts<'_> {
    /// The chart of the measure `pick` reads (`measure`: its index in the flag counts).
    fn draw(
        &self,
        title: &str,
        unit: &str,
        color: &'static str,
        pick: fn(&SeriesPoint) -> Option<Band>,
        measure: usize,
    ) -> String {
        let bands: Vec<(i64, Band)> = self
            .points
            .iter()
            .filter_map(|p| pick(p).map(|b| (p.at.timestamp(), b)))
            .collect();
        let flagged = self
            .points
            .iter()
            .filter(|p| p.flagged[measure] > 0)
            .filter_map(|p| pick(p).map(|b| (p.at.timestamp(), b.mean, p.flagged[measure])))
            .collect();
        let series = Series {
            label: if self.bucket > 1 {
                "mean (band: min–max)".to_owned()
            } else {
                title.to_owned()
            },
            color,
            points: bands.iter().map(|(t, b)| (*t, b.mean)).collect(),
            band: if self.bucket > 1 {
                bands.iter().map(|(t, b)| (*t, b.min, b.max)).collect()
            } else {
                Vec::new()
            },
            flagged,
        };
        time_chart(title, unit, self.from, self.to, self.gap, &[series])
    }
}
