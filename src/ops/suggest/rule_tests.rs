//! The general rules of the suggester, each on a small sample shaped like a real export
//! (a typical-meteorological-year file, a weather series, a dataframe dump): never keyed
//! to a file name.

use super::{Sample, SuggestError, suggest};

use crate::ops::suggest::suggested_text as run;

/// A TMY3-like file: a metadata line, `Date (MM/DD/YYYY)` and `Time (HH:MM)` up to
/// `24:00`, an uncertainty in percent, a dry-bulb temperature in `(C)`, `RHum (%)`.
fn tmy3() -> String {
    let mut t = "703165,\"SAND POINT\",AK,-9.0,55.317,-160.517,7\n\
Date (MM/DD/YYYY),Time (HH:MM),GHI (W/m^2),GHI uncert (%),Dry-bulb (C),Dry-bulb uncert (code),RHum (%),Pressure (mbar)\n"
        .to_owned();
    for day in 1..=2 {
        for h in 1..=24 {
            t.push_str(&format!(
                "01/{day:02}/1997,{h:02}:00,{},{},{}.5,9,{},1012\n",
                h * 10,
                h % 20,
                h % 7,
                70 + h
            ));
        }
    }
    t
}

#[test]
fn a_clock_column_is_never_the_sensor_and_is_read_with_its_date() {
    let t = run("703165TY.csv", &tmy3());
    assert!(!t.contains("column = \"Time (HH:MM)\""), "{t}");
    assert!(
        t.contains("columns = [\"Date (MM/DD/YYYY)\", \"Time (HH:MM)\"]"),
        "{t}"
    );
    assert!(t.contains("end_of_day = true"), "{t}");
}

#[test]
fn a_percent_alone_is_no_humidity_and_a_dry_bulb_is_a_temperature() {
    let t = run("703165TY.csv", &tmy3());
    assert!(
        t.contains("[measures.humidity]\n# humidity from \"RHum (%)\""),
        "{t}"
    );
    assert!(t.contains("[measures.ghi_uncert]"), "{t}");
    assert!(
        t.contains("[measures.temperature]\n# temperature from \"Dry-bulb (C)\"; unit degC"),
        "{t}"
    );
    assert!(
        t.contains("column = \"Dry-bulb (C)\"\nunit = \"degC\""),
        "{t}"
    );
}

#[test]
fn match_is_never_wider_than_the_file_name() {
    let t = run("703165TY.csv", &tmy3());
    assert!(t.contains("match = [\"*TY.csv\"]"), "{t}");
    assert!(!t.contains("\"*.csv\""), "{t}");
}

#[test]
fn of_several_temperatures_only_the_airs_is_taken_and_marked() {
    let mut text = "time,Module Temp (C),Ambient Temp (C),Dew Point Temp (C)\n".to_owned();
    for i in 0..5 {
        text.push_str(&format!("2024-05-01T1{i}:00:00Z,4{i}.5,2{i}.1,1{i}.0\n"));
    }
    let t = run("plant_1.csv", &text);
    assert!(
        t.contains("# temperature from \"Ambient Temp (C)\"") && t.contains("ASSUMED: the air's"),
        "{t}"
    );
    assert!(
        t.contains("[measures.module_temp]") && t.contains("[measures.dew_point_temp]"),
        "{t}"
    );
    // Two °C columns and neither named for the air: neither is the temperature.
    let mut text = "time,Module A Temp (C),Module B Temp (C)\n".to_owned();
    for i in 0..5 {
        text.push_str(&format!("2024-05-01T1{i}:00:00Z,4{i}.5,2{i}.1\n"));
    }
    let t = run("plant_1.csv", &text);
    assert!(!t.contains("[measures.temperature]"), "{t}");
    assert!(t.contains("ASSUMED: its name gives a temperature"), "{t}");
}

#[test]
fn a_unit_only_one_reading_fits_is_assumed() {
    let rows = |vals: &[f64]| {
        let mut t = "time,Temp,RH\n".to_owned();
        for (i, v) in vals.iter().enumerate() {
            t.push_str(&format!("2024-05-01T1{i}:00:00Z,{v},0.{}5\n", 5 + i));
        }
        t
    };
    // Up to 76 with a spread of 30: °F alone fits.
    let t = run("x_1.csv", &rows(&[46.0, 52.5, 61.0, 70.2, 76.0]));
    assert!(t.contains("unit = \"degF\""), "{t}");
    assert!(t.contains("unit degF from the values (ASSUMED"), "{t}");
    // Humidity between 0 and 1: a fraction.
    assert!(t.contains("unit = \"fraction\""), "{t}");
    // Kelvin.
    let t = run("x_1.csv", &rows(&[280.1, 281.0, 283.2, 285.0, 290.0]));
    assert!(t.contains("unit = \"K\""), "{t}");
    // 70–72 could be a tank in °C or a room in °F: no unit is claimed.
    let t = run("x_1.csv", &rows(&[70.0, 71.0, 72.0, 71.5, 70.5]));
    assert!(
        !t.contains("\nunit = \"degF\"") && !t.contains("\nunit = \"K\""),
        "{t}"
    );
    // Read as °C without a marker, but never silently.
    assert!(t.contains("no unit marker: read as degC"), "{t}");
    assert!(t.contains("ASSUMED: no marker says so"), "{t}");
}

#[test]
fn a_weather_word_is_not_a_sensor_where_every_time_is_unique() {
    let mut text = "date,precipitation,temp_max,temp_min,wind,weather\n".to_owned();
    let words = ["rain", "sun", "drizzle"];
    for d in 1..=28 {
        text.push_str(&format!(
            "2012-01-{d:02},0.{d},1{},{},4.{d},{}\n",
            d % 9,
            d % 5,
            words[d % 3]
        ));
    }
    let t = run("seattle-weather.csv", &text);
    assert!(!t.contains("column = \"weather\"  #"), "{t}");
    // Dates alone carry no offset: the zone is to fill in.
    assert!(t.contains("zone = \"UTC\"  # FILL IN"), "{t}");
    // `temp_max` and `temp_min` are statistics of the day, neither the temperature.
    assert!(!t.contains("[measures.temperature]"), "{t}");
}

#[test]
fn a_text_column_telling_apart_rows_of_one_time_is_the_sensor() {
    let mut text = "date,site,temp\n".to_owned();
    for d in 1..=10 {
        for s in ["north", "south"] {
            text.push_str(&format!("2012-01-{d:02},{s},1.{d}\n"));
        }
    }
    let t = run("sites_1.csv", &text);
    assert!(t.contains("[sensor]\ncolumn = \"site\""), "{t}");
}

#[test]
fn dates_alone_that_repeat_with_nothing_to_tell_them_apart_are_declined() {
    let mut text = "Date,Hour,GHI\n".to_owned();
    for h in 1..=12 {
        text.push_str(&format!("2012-01-01,{h},{h}0\n"));
    }
    let sample = Sample::from_bytes(text.as_bytes(), false).unwrap();
    match suggest(&sample, "x_1.csv", None) {
        Err(SuggestError::NoTime(why)) => assert!(why.contains("share the date"), "{why}"),
        other => panic!("{:?}", other.map(|s| s.text)),
    }
}

#[test]
fn an_empty_header_name_holding_times_is_read_as_column_n() {
    let mut text = ",Year,Temperature,Pressure\n".to_owned();
    for m in 0..6 {
        text.push_str(&format!("2019-01-01 00:{m}5:00-07:00,2019,-19.{m},775\n"));
    }
    let t = run("psm3_5min.csv", &text);
    assert!(t.contains("column = \"column_1\""), "{t}");
    assert!(t.contains("the agent calls it column_1"), "{t}");
    assert!(t.contains("# zone: the times carry their offset"), "{t}");
}

#[test]
fn a_names_line_and_its_values_before_the_header_are_metadata() {
    let mut text = "Source,Location ID,Time Zone,Elevation\n\
NSRDB,401182,-7,2168\n\
Year,Month,Day,Hour,Minute,Temperature\n"
        .to_owned();
    for h in 0..6 {
        text.push_str(&format!("2017,1,1,{h},0,-8.{h}\n"));
    }
    let t = run("psm3_1.csv", &text);
    assert!(t.contains("preamble = 2"), "{t}");
    assert!(t.contains("metadata = \"location_id\""), "{t}");
    assert!(t.contains("zone_from_metadata = \"time_zone\""), "{t}");
    assert!(t.contains("minute = \"Minute\""), "{t}");
}

#[test]
fn a_footer_at_the_end_of_a_long_file_is_seen() {
    let mut text = "time(UTC),T2m,RH,SP\n".to_owned();
    let mut i = 0;
    while text.len() < super::MAX_SAMPLE_BYTES + 4096 {
        text.push_str(&format!(
            "2018{:02}{:02}:{:02}00,2.0{i},94.38,99870.0\n",
            1 + i / 744,
            1 + (i / 24) % 28,
            i % 24
        ));
        i += 1;
    }
    text.push_str("\nT2m: 2-m air temperature (degree Celsius)\nPVGIS (c) European Union\n");
    let s = super::Sample::read_file(std::io::Cursor::new(text.as_bytes())).unwrap();
    let t = suggest(&s, "tmy_45.csv", None).unwrap().text;
    assert!(
        t.contains("skip_malformed = true  # ASSUMED: 2 line(s) near the end of the file"),
        "{t}"
    );
    // `SP` with values only pascals fit: the surface pressure, assumed.
    assert!(t.contains("[measures.pressure]"), "{t}");
    assert!(t.contains("unit = \"Pa\""), "{t}");
    assert!(t.contains("usual short name of a surface pressure"), "{t}");
}

#[test]
fn the_zone_field_of_the_times_wins_over_the_sites_local_zone() {
    let mut text = "Source,Location ID,Time Zone,Local Time Zone\n\
NSRDB,3049132,0,-9\n\
Year,Month,Day,Hour,Minute,Temperature\n"
        .to_owned();
    for h in 0..6 {
        text.push_str(&format!("2023,1,1,{h},0,-8.{h}\n"));
    }
    let t = run("polar_1.csv", &text);
    assert!(t.contains("zone_from_metadata = \"time_zone\""), "{t}");
}

#[test]
fn an_unmarked_temperature_that_reads_as_degf_too_is_assumed() {
    let mut text = "date,temp\n".to_owned();
    for h in 0..10 {
        text.push_str(&format!("2010/01/01 {h:02}:00,3{h}.4\n"));
    }
    let t = run("seattle-temps.csv", &text);
    assert!(t.contains("ASSUMED: these values read as degF too"), "{t}");
}

#[test]
fn rows_with_most_measured_columns_empty_are_noted() {
    let mut text = "measured_on,ghi,dni,dhi,zenith\n".to_owned();
    for i in 0..10 {
        if i == 4 {
            text.push_str("2/1/2019 0:20,,,,150.1\n");
            continue;
        } else {
            text.push_str(&format!("2/1/2019 0:{:02},1{i},2{i},3{i},15{i}.1\n", i * 5));
        }
    }
    let t = run("irradiance_1.csv", &text);
    assert!(
        t.contains("[rows]\n# ASSUMED: 1 of 10 sampled rows have \"ghi\", \"dni\", \"dhi\" empty"),
        "{t}"
    );
}

#[test]
fn a_station_number_on_an_unnamed_metadata_line_names_the_sensor() {
    let t = run("703165TY.csv", &tmy3());
    assert!(t.contains("fields = { station = 1"), "{t}");
    assert!(t.contains("\"703165\", a station number"), "{t}");
}

#[test]
fn a_header_naming_fewer_columns_than_the_rows_is_padded() {
    let mut text = ",Year,DOY,CST,Battery [VDC]\n".to_owned();
    for m in 0..8 {
        text.push_str(&format!("0,2019,319,{m},13.5,-7999,-7999\n"));
    }
    let t = run("midc_raw_short_header_1.txt", &text);
    assert!(
        t.contains("preamble = 1  # ASSUMED: the header on line 1 names 5 of the 7"),
        "{t}"
    );
    assert!(t.contains("header = false"), "{t}");
    assert!(
        t.contains("names = [\"column_1\", \"Year\", \"DOY\", \"CST\", \"Battery [VDC]\", \"column_6\", \"column_7\"]"),
        "{t}"
    );
    assert!(t.contains("hhmm = \"CST\""), "{t}");
}

/// A year of hourly temperatures without a unit: January alone (the sample's head) reads
/// as °C or °F alike; the summer, read at places through the file, fits only °F.
#[test]
fn a_unit_only_the_summer_proves_is_read_from_places_through_the_file() {
    let mut t = String::from("date,temp\n");
    for day in 0..365 {
        let summer = (120..270).contains(&day);
        for h in 0..24 {
            let v = if summer {
                70.0 + f64::from(h % 10)
            } else {
                40.0 + f64::from(h % 8)
            };
            let date = chrono::NaiveDate::from_yo_opt(2010, day + 1).unwrap();
            t.push_str(&format!("{date} {h:02}:00,{v:.1}\n"));
        }
    }
    let head = Sample::read(t.as_bytes()).unwrap();
    let head_only = suggest(&head, "series-temps.csv", None).unwrap().text;
    assert!(!head_only.contains("\nunit = \"degF\""), "{head_only}");
    let sample = Sample::read_file(std::io::Cursor::new(t.into_bytes())).unwrap();
    assert!(!sample.spread.is_empty());
    let text = suggest(&sample, "series-temps.csv", None).unwrap().text;
    assert!(
        text.contains("\nunit = \"degF\"") && text.contains("only this unit fits them"),
        "{text}"
    );
}

/// A fixed-width export (blank-aligned, no header, a short title preamble): declined with
/// what to write, never split on a character that happens to be there.
#[test]
fn a_blank_aligned_export_is_declined_with_the_layout_to_write() {
    let mut t = String::from(" Albuquerque\n   35.03 -106.62 1617 -7  version 1\n");
    for m in 0..30 {
        t.push_str(&format!(
            " 2019  56  2 25  0 {m:2}  0.000  79.30   104.5 0    60.5 0\n"
        ));
    }
    let sample = Sample::from_bytes(t.as_bytes(), false).unwrap();
    let e = suggest(&sample, "abq19056.dat", None).unwrap_err();
    assert_eq!(
        e,
        SuggestError::Aligned {
            fields: 12,
            lines: 30,
            first: 3
        }
    );
    assert!(e.to_string().contains("delimiter = \"whitespace\""), "{e}");
}
