//! Property tests: every supported layout reads back the instant it was written from,
//! the order verdict does not depend on the order of the evidence, and no input panics.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Utc};
use csv::ByteRecord;
use proptest::prelude::*;

use super::builtin::parse_epoch;
use super::format::CompiledFormat;
use super::zone::{header_zone, parse_zone};
use super::*;

/// Any date and time in years 1000–9999, to the microsecond.
fn naive() -> impl Strategy<Value = NaiveDateTime> {
    (1000i32..=9999, 1u32..=366, 0u32..86_400, 0u32..1_000_000).prop_filter_map(
        "a real day of the year",
        |(y, doy, secs, micros)| {
            let date = NaiveDate::from_yo_opt(y, doy)?;
            let time = NaiveTime::from_num_seconds_from_midnight_opt(secs, micros * 1000)?;
            Some(date.and_time(time))
        },
    )
}

/// Any offset in whole minutes within ±14:00.
fn offset() -> impl Strategy<Value = FixedOffset> {
    (-14 * 60..=14 * 60i32).prop_map(|m| FixedOffset::east_opt(m * 60).expect("within a day"))
}

/// `+HH:MM` / `-HH:MM`.
fn offset_text(o: FixedOffset) -> String {
    let s = o.local_minus_utc();
    let sign = if s < 0 { '-' } else { '+' };
    format!("{sign}{:02}:{:02}", s.abs() / 3600, s.abs() % 3600 / 60)
}

/// What reading `naive` in `offset` must give: the instant, or out of range when its UTC
/// year leaves 0001–9999.
fn expected(naive: NaiveDateTime, offset: FixedOffset) -> Result<DateTime<Utc>, TimestampError> {
    let t = (naive - chrono::TimeDelta::seconds(i64::from(offset.local_minus_utc()))).and_utc();
    if (1..=9999).contains(&t.year()) {
        Ok(t)
    } else {
        Err(TimestampError::OutOfRange)
    }
}

fn record(fields: &[String]) -> ByteRecord {
    ByteRecord::from(fields.to_vec())
}

fn reader(json: &str, headers: &[&str], zone: Option<&str>) -> TimeReader {
    let spec: TimeSpec = serde_json::from_str(json).expect("test spec");
    let headers: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    TimeReader::new(&spec, &headers, SourceTimezone::default(), zone).expect("test spec")
}

fn evidence() -> impl Strategy<Value = OrderEvidence> {
    prop_oneof![
        Just(OrderEvidence::NotNeeded),
        Just(OrderEvidence::DayFirst),
        Just(OrderEvidence::MonthFirst),
        Just(OrderEvidence::Ambiguous),
    ]
}

/// Strings that look like times often enough to reach deep into the parsers.
fn time_like() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,40}",
        "[0-9.+:/TZ apmAPM-]{0,32}",
        "[0-3]?[0-9][-./][01]?[0-9][-./][0-9]{2,5}( [0-2]?[0-9]:[0-6][0-9](:[0-6][0-9](\\.[0-9]{0,12})?)?)?( ?(Z|UTC|[+-][0-9]{1,4}))?",
        "[0-9]{4}[-./][0-9]{1,2}[-./][0-9]{1,2}[T ]24:00(:00)?",
        "[+-]?[0-9]{0,20}(\\.[0-9]{0,20})?",
        "(UTC|GMT|utc)? ?[+-]?[0-9]{0,3}[:.]?[0-9]{0,8}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn iso_reads_back(t in naive(), o in offset()) {
        let with_offset = format!("{}{}", t.format("%Y-%m-%dT%H:%M:%S%.6f"), offset_text(o));
        prop_assert_eq!(parse_timestamp(&with_offset, SourceTimezone::default()), expected(t, o));
        let naive_text = t.format("%Y-%m-%d %H:%M:%S%.6f").to_string();
        prop_assert_eq!(
            parse_timestamp_ordered(&naive_text, SourceTimezone::Fixed(o), None, false),
            expected(t, o).map(|t| (t, OrderEvidence::NotNeeded))
        );
    }

    #[test]
    fn day_month_dates_read_back_in_the_declared_order(
        t in naive(),
        o in offset(),
        sep in prop::sample::select(vec!['-', '.', '/']),
        order in prop::sample::select(vec![DateOrder::Dmy, DateOrder::Mdy]),
    ) {
        let (first, second) = match order {
            DateOrder::Mdy => (t.month(), t.day()),
            _ => (t.day(), t.month()),
        };
        let s = format!(
            "{first:02}{sep}{second}{sep}{} {}",
            t.year(),
            t.format("%H:%M:%S%.6f")
        );
        let tz = SourceTimezone::Fixed(o);
        let want = expected(t, o);
        prop_assert_eq!(
            parse_timestamp_ordered(&s, tz, Some(order), false),
            want.map(|t| (t, OrderEvidence::NotNeeded))
        );
        // Undeclared: proven values read right, ambiguous ones day-first.
        let got = parse_timestamp_ordered(&s, tz, None, false);
        let (d, m) = (t.day(), t.month());
        let want_evidence = if d == m {
            OrderEvidence::NotNeeded
        } else if d > 12 {
            if order == DateOrder::Dmy { OrderEvidence::DayFirst } else { OrderEvidence::MonthFirst }
        } else {
            OrderEvidence::Ambiguous
        };
        match want_evidence {
            OrderEvidence::Ambiguous if order == DateOrder::Mdy => {
                // Read day-first: the other reading, flagged.
                prop_assert_eq!(got.map(|(_, e)| e), Ok(OrderEvidence::Ambiguous));
            }
            e => prop_assert_eq!(got, want.map(|t| (t, e))),
        }
    }

    #[test]
    fn midnight_as_the_previous_days_24_00(t in naive(), o in offset()) {
        let midnight = t.date().and_time(NaiveTime::MIN);
        prop_assume!(midnight.date() > NaiveDate::from_ymd_opt(1000, 1, 1).unwrap());
        let prev = midnight.date().pred_opt().unwrap();
        let tz = SourceTimezone::Fixed(o);
        let iso = format!("{} 24:00", prev.format("%Y-%m-%d"));
        let dmy = format!("{} 24:00:00", prev.format("%d.%m.%Y"));
        for s in [iso, dmy] {
            prop_assert_eq!(
                parse_timestamp_ordered(&s, tz, Some(DateOrder::Dmy), true).map(|(t, _)| t),
                expected(midnight, o)
            );
            prop_assert_eq!(
                parse_timestamp_ordered(&s, tz, Some(DateOrder::Dmy), false),
                Err(TimestampError::OutOfRange)
            );
        }
    }

    #[test]
    fn date_parts_read_back(t in naive(), o in offset()) {
        let t = t.with_nanosecond(0).unwrap();
        let r = reader(
            r#"{"year": "Y", "month": "M", "day": "D", "hour": "h", "minute": "m", "second": "s", "zone_from_metadata": "tz"}"#,
            &["Y", "M", "D", "h", "m", "s"],
            Some(&offset_text(o)),
        );
        let fields = [t.year() as u32, t.month(), t.day(), t.hour(), t.minute(), t.second()]
            .map(|v| v.to_string());
        prop_assert_eq!(r.read(&record(&fields)).map_err(|e| e.1), expected(t, o).map(|t| (t, OrderEvidence::NotNeeded)));
    }

    #[test]
    fn year_day_of_year_hhmm_reads_back(t in naive(), o in offset(), as_2400 in any::<bool>()) {
        let t = t.with_second(0).unwrap().with_nanosecond(0).unwrap();
        let r = reader(
            r#"{"year": "Year", "day_of_year": "DOY", "hhmm": "HHMM", "end_of_day": true, "zone_from_metadata": "tz"}"#,
            &["Year", "DOY", "HHMM"],
            Some(&offset_text(o)),
        );
        let midnight = t.time() == NaiveTime::MIN;
        let prev = t.date().pred_opt().filter(|d| d.year() >= 1000);
        let fields = match prev {
            Some(prev) if as_2400 && midnight => {
                [prev.year().to_string(), prev.ordinal().to_string(), "2400".to_string()]
            }
            _ => [
                t.year().to_string(),
                t.ordinal().to_string(),
                (t.hour() * 100 + t.minute()).to_string(),
            ],
        };
        prop_assert_eq!(r.read(&record(&fields)).map_err(|e| e.1), expected(t, o).map(|t| (t, OrderEvidence::NotNeeded)));
    }

    #[test]
    fn formats_and_joined_columns_read_back(t in naive(), o in offset()) {
        let r = reader(
            r#"{"columns": ["Date", "Time"], "format": "%m/%d/%Y %I:%M:%S%.f %p", "zone_from_header": true}"#,
            &["Date", &format!("Time, GMT{}", offset_text(o))],
            None,
        );
        let fields = [
            t.format("%m/%d/%Y").to_string(),
            t.format("%I:%M:%S%.6f %p").to_string(),
        ];
        prop_assert_eq!(r.read(&record(&fields)).map_err(|e| e.1), expected(t, o).map(|t| (t, OrderEvidence::NotNeeded)));
    }

    #[test]
    fn epochs_read_back(t in naive()) {
        let instant = t.and_utc();
        for (unit, text, want) in [
            ("s", instant.timestamp().to_string(), instant.with_nanosecond(0).unwrap()),
            ("ms", instant.timestamp_millis().to_string(), instant.with_nanosecond(instant.nanosecond() / 1_000_000 * 1_000_000).unwrap()),
            ("us", instant.timestamp_micros().to_string(), instant),
        ] {
            let r = reader(&format!(r#"{{"column": "t", "epoch": "{unit}"}}"#), &["t"], None);
            prop_assert_eq!(r.read(&record(&[text])), Ok((want, OrderEvidence::NotNeeded)));
        }
    }

    #[test]
    fn order_verdict_does_not_depend_on_arrival(
        (notes, shuffled) in prop::collection::vec((evidence(), 1u64..1000), 0..40)
            .prop_flat_map(|v| (Just(v.clone()), Just(v).prop_shuffle()))
    ) {
        let verdict = |notes: &[(OrderEvidence, u64)]| {
            let mut t = OrderTally::default();
            for &(e, l) in notes {
                t.note(e, l);
            }
            t.verdict()
        };
        prop_assert_eq!(verdict(&notes), verdict(&shuffled));
    }

    #[test]
    fn no_text_panics_the_built_in_reader(s in time_like()) {
        let zones = [
            SourceTimezone::default(),
            SourceTimezone::Named(chrono_tz::Europe::Berlin),
            SourceTimezone::Fixed(FixedOffset::east_opt(-86_399).unwrap()),
        ];
        for tz in zones {
            for order in [None, Some(DateOrder::Dmy), Some(DateOrder::Mdy), Some(DateOrder::Ymd)] {
                for eod in [false, true] {
                    if let Ok((t, _)) = parse_timestamp_ordered(&s, tz, order, eod) {
                        prop_assert!((1..=9999).contains(&t.year()), "{s:?} -> {t}");
                    }
                }
            }
        }
        for unit in [EpochUnit::Seconds, EpochUnit::Milliseconds, EpochUnit::Microseconds] {
            let _ = parse_epoch(s.as_bytes(), unit);
        }
        let _ = parse_offset(&s);
        let _ = parse_zone(&s);
        let _ = header_zone(&s);
    }

    #[test]
    fn no_format_or_value_panics(
        format in prop_oneof!["\\PC{0,20}", "(%[a-zA-Z.:#0-9+-]{1,2}|[ /:.,-]|[a-zA-Z]){0,10}"],
        value in time_like(),
    ) {
        if let Ok(f) = CompiledFormat::new(&format) {
            let _ = f.read(&value, true);
            let _ = f.read(&value, false);
        }
        for fixed in ["%m/%d/%y %I:%M%p", "%d.%m.%Y %H:%M:%S%.f %z", "%Y-%j %H%M"] {
            let f = CompiledFormat::new(fixed).expect("valid format");
            let _ = f.read(&value, true);
        }
    }

    #[test]
    fn no_record_panics_a_reader(
        cells in prop::collection::vec(time_like(), 0..5),
        header in prop::collection::vec("\\PC{0,12}|Date Time, GMT-05:00|Y|DOY|HHMM", 0..5),
    ) {
        let rec = ByteRecord::from(cells.clone());
        let specs = [
            r#"{"column": "a"}"#,
            r#"{"columns": ["a", "b", "c"], "end_of_day": true}"#,
            r#"{"columns": ["a", "b"], "format": "%m/%d/%y %I:%M%p"}"#,
            r#"{"column": "a", "epoch": "ms"}"#,
            r#"{"year": "a", "day_of_year": "b", "hhmm": "c", "end_of_day": true, "zone": "America/Denver"}"#,
            r#"{"year": "a", "month": "b", "day": "c", "hour": "d", "minute": "e", "end_of_day": true}"#,
        ];
        let headers: Vec<String> = ["a", "b", "c", "d", "e"].map(String::from).to_vec();
        for json in specs {
            let spec: TimeSpec = serde_json::from_str(json).expect("test spec");
            let r = TimeReader::new(&spec, &headers, SourceTimezone::default(), None).expect("test spec");
            if let Err((col, _)) = r.read(&rec) {
                prop_assert!(r.columns().contains(&col));
            }
            // Random headers: setup may fail, never panic.
            let zone_spec = TimeSpec { zone_from_header: true, column: Some("Date Time".into()), ..TimeSpec::default() };
            let _ = TimeReader::new(&zone_spec, &header, SourceTimezone::default(), cells.first().map(String::as_str));
            let meta_spec = TimeSpec { zone_from_metadata: Some("tz".into()), year: Some("Y".into()), day_of_year: Some("DOY".into()), ..TimeSpec::default() };
            let _ = TimeReader::new(&meta_spec, &header, SourceTimezone::default(), cells.first().map(String::as_str));
        }
    }
}
