//! EnergyPlus weather files (EPW): a documented format ("Auxiliary Programs" of the
//! EnergyPlus documentation) that weather-data services (PVGIS, Climate.OneBuilding,
//! ASHRAE's IWEC, NREL's TMY converters) write for building and solar simulation. Its
//! data records have no header line: their 35 fields are fixed by the format, so the
//! columns are named from the format, not guessed from the values. The file is known by
//! its eight header records, `LOCATION` first and `DATA PERIODS` last.

use super::names::derive_glob;
use super::out::{Out, s};
use super::{Sample, SuggestError, Suggestion, checked};

/// The header records, in the order the format gives them.
const HEADER_RECORDS: [&str; 8] = [
    "LOCATION",
    "DESIGN CONDITIONS",
    "TYPICAL/EXTREME PERIODS",
    "GROUND TEMPERATURES",
    "HOLIDAYS/DAYLIGHT SAVING",
    "COMMENTS 1",
    "COMMENTS 2",
    "DATA PERIODS",
];

/// The 35 fields of a data record, as the format names them.
const FIELDS: [&str; 35] = [
    "year",
    "month",
    "day",
    "hour",
    "minute",
    "data_source",
    "dry_bulb",
    "dew_point",
    "relative_humidity",
    "atmospheric_pressure",
    "extraterrestrial_horizontal",
    "extraterrestrial_normal",
    "horizontal_infrared",
    "global_horizontal",
    "direct_normal",
    "diffuse_horizontal",
    "global_illuminance",
    "direct_illuminance",
    "diffuse_illuminance",
    "zenith_luminance",
    "wind_direction",
    "wind_speed",
    "total_sky_cover",
    "opaque_sky_cover",
    "visibility",
    "ceiling_height",
    "present_weather_observation",
    "present_weather_codes",
    "precipitable_water",
    "aerosol_optical_depth",
    "snow_depth",
    "days_since_last_snowfall",
    "albedo",
    "liquid_precipitation_depth",
    "liquid_precipitation_quantity",
];

/// The measures stored: the air (the three canonical measures and the dew point) and the
/// solar and wind fields; each with its unit and the format's missing-value code.
const MEASURES: [(&str, &str, &str, &str); 10] = [
    ("temperature", "dry_bulb", "degC", "99.9"),
    ("humidity", "relative_humidity", "%", "999"),
    ("pressure", "atmospheric_pressure", "Pa", "999999"),
    ("dew_point", "dew_point", "degC", "99.9"),
    ("ghi", "global_horizontal", "W/m2", "9999"),
    ("dni", "direct_normal", "W/m2", "9999"),
    ("dhi", "diffuse_horizontal", "W/m2", "9999"),
    ("ir", "horizontal_infrared", "W/m2", "9999"),
    ("wind_direction", "wind_direction", "deg", "999"),
    ("wind_speed", "wind_speed", "m/s", "999"),
];

/// Whether `sample` is an EPW file: its first eight lines are the format's header records.
pub(super) fn is_epw(sample: &Sample) -> bool {
    sample.lines.len() > HEADER_RECORDS.len()
        && HEADER_RECORDS.iter().zip(&sample.lines).all(|(r, l)| {
            let l = String::from_utf8_lossy(l);
            l.split(',')
                .next()
                .is_some_and(|f| f.trim().to_ascii_uppercase().starts_with(r))
        })
}

/// The profile of an EPW file: its layout, the LOCATION record's fields (the station's
/// WMO number when it gives one, the zone of local standard time the times are in), the
/// time fields and the stored measures.
pub(super) fn suggest(
    sample: &Sample,
    file_name: &str,
    name: String,
) -> Result<Suggestion, SuggestError> {
    let text = |i: usize| String::from_utf8_lossy(&sample.lines[i]).into_owned();
    let location: Vec<String> = text(0).split(',').map(|f| f.trim().to_owned()).collect();
    let data: Vec<Vec<String>> = (HEADER_RECORDS.len()..sample.lines.len())
        .map(|i| text(i).split(',').map(|f| f.trim().to_owned()).collect())
        .filter(|f: &Vec<String>| !f.iter().all(String::is_empty))
        .collect();
    if data.is_empty() {
        return Err(SuggestError::NoMeasure);
    }
    if let Some(l) = data.iter().position(|f| f.len() != FIELDS.len()) {
        return Err(SuggestError::NoTime(format!(
            "an EnergyPlus weather file whose data record on line {} has {} fields, not the \
             format's {}",
            l + HEADER_RECORDS.len() + 1,
            data[l].len(),
            FIELDS.len()
        )));
    }
    // Hourly records write minute 0 or 60 (the hour ending); other minutes are sub-hourly
    // records, whose hour and minute the format counts differently: not read here.
    let minutes_whole = data.iter().all(|f| f[4] == "0" || f[4] == "60");
    if !minutes_whole {
        return Err(SuggestError::NoTime(
            "an EnergyPlus weather file with sub-hourly records (minutes other than 0 and \
             60): write its [time] by hand"
                .into(),
        ));
    }
    let mut out = Out::default();
    head(&mut out, sample, file_name);
    layout_and_metadata(&mut out, &location);
    out.section("time");
    for f in ["year", "month", "day", "hour"] {
        out.kv(f, &s(f), None);
    }
    out.line("# minute: 0 or 60 on every record, the hour's end: the hour alone gives the time");
    out.kv(
        "end_of_day",
        "true",
        Some("EPW hours run 1 to 24, each the hour ending; 24 ends the day"),
    );
    out.kv(
        "zone_from_metadata",
        &s("time_zone"),
        Some(&format!(
            "LOCATION's 9th field, {:?}: the hours from UTC of the local standard time EPW \
             records are in",
            location.get(8).map_or("", String::as_str)
        )),
    );
    for (key, column, unit, missing) in MEASURES {
        out.section(&format!("measures.{key}"));
        out.kv("column", &s(column), None);
        out.kv(
            "unit",
            &s(unit),
            Some("the unit the EPW format gives this field"),
        );
        out.kv(
            "missing",
            &format!("[{}]", s(missing)),
            Some("the format's missing-value code for this field"),
        );
    }
    out.line("");
    out.line(
        "# Not stored: the illuminances, sky cover, visibility, ceiling, weather codes, \
         precipitable water, aerosol depth, snow, albedo and precipitation fields; add a \
         [measures.NAME] section for any you need.",
    );
    checked(name, out.text)
}

fn head(out: &mut Out, sample: &Sample, file_name: &str) {
    out.line(&format!(
        "# Suggested by `sensor-ingest profile suggest` from {} line(s) of {file_name}.",
        sample.len()
    ));
    out.line(
        "# An EnergyPlus weather file (EPW): eight header records, then data records of 35 \
         fields named by the format.",
    );
    out.line("# Check every line marked FILL IN or ASSUMED, then `sensor-ingest check --profile NAME FILE`.");
    out.kv(
        "description",
        &s(&format!(
            "Suggested from {file_name} (EnergyPlus weather, EPW)"
        )),
        None,
    );
    let glob = derive_glob(file_name);
    out.kv(
        "match",
        &format!("[{}]", s(&glob)),
        Some(&format!("from the file name {file_name}")),
    );
}

/// `[layout]`, `[metadata]` (the LOCATION record) and `[sensor]`: the WMO station number
/// when LOCATION gives one, else the station's name is the person's to give.
fn layout_and_metadata(out: &mut Out, location: &[String]) {
    out.section("layout");
    out.kv(
        "preamble",
        &HEADER_RECORDS.len().to_string(),
        Some("the EPW header records, LOCATION to DATA PERIODS"),
    );
    out.kv(
        "header",
        "false",
        Some("EPW data records have no header line"),
    );
    let names: Vec<String> = FIELDS.iter().map(|f| s(f)).collect();
    out.line(&format!("names = [{}]", names.join(", ")));
    out.section("metadata");
    out.kv("line", "1", Some("the LOCATION record"));
    out.line("fields = { city = 2, wmo = 6, latitude = 7, longitude = 8, time_zone = 9 }");
    out.section("sensor");
    let wmo = location.get(5).map_or("", String::as_str);
    if wmo.len() >= 5 && wmo.bytes().all(|b| b.is_ascii_digit()) {
        out.kv(
            "metadata",
            &s("wmo"),
            Some(&format!(
                "LOCATION's 6th field, {wmo:?}: the station's WMO number"
            )),
        );
    } else {
        let city = location.get(1).map_or("", String::as_str);
        let fallback = if city.is_empty() || city.eq_ignore_ascii_case("unknown") {
            "station".to_owned()
        } else {
            city.to_owned()
        };
        out.kv(
            "constant",
            &s(&fallback),
            Some(&format!(
                "FILL IN: the station's name: LOCATION gives no WMO number ({wmo:?}) and the city {city:?}"
            )),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epw(wmo: &str, minute: u32) -> String {
        let mut t = format!(
            "LOCATION,Amsterdam,-,NLD,IWEC Data,{wmo},52.30,4.77,1.0,-2.0\n\
             DESIGN CONDITIONS,0\nTYPICAL/EXTREME PERIODS,0\nGROUND TEMPERATURES,0\n\
             HOLIDAYS/DAYLIGHT SAVINGS,No,0,0,0\nCOMMENTS 1,x\nCOMMENTS 2,y\n\
             DATA PERIODS,1,1,Data,Sunday, 1/ 1,12/31\n"
        );
        for h in 1..=24 {
            t.push_str(&format!(
                "1983,1,1,{h},{minute},?9?9?9?9E0?9?9?9*9*9?9*9*9?9*9*9?9?9*9*_*9*9*9*9*9,\
                 7.0,5.9,93,100500,0,1415,312,0,0,0,0,0,0,0,200,4.1,10,10,6.0,450,9,\
                 999999999,14,0.0840,0,88,0.000,0.0,0.0\n"
            ));
        }
        t
    }

    #[test]
    fn an_epw_file_is_read_with_the_format_s_names_and_its_station_number() {
        let sample = Sample::from_bytes(epw("062400", 60).as_bytes(), false).unwrap();
        assert!(is_epw(&sample));
        let t = suggest(&sample, "NLD_Amsterdam.062400_IWEC.epw", "nld".into())
            .unwrap()
            .text;
        assert!(t.contains("metadata = \"wmo\""), "{t}");
        assert!(t.contains("zone_from_metadata = \"time_zone\""), "{t}");
        assert!(t.contains("column = \"dry_bulb\"\nunit = \"degC\""), "{t}");
        assert!(!t.contains("minute = \"minute\""), "{t}");
    }

    #[test]
    fn without_a_wmo_number_the_station_is_filled_in_and_sub_hourly_is_declined() {
        let sample = Sample::from_bytes(epw("unknown", 0).as_bytes(), false).unwrap();
        let t = suggest(&sample, "tmy.epw", "tmy".into()).unwrap().text;
        assert!(t.contains("constant = \"Amsterdam\"  # FILL IN"), "{t}");
        let sample = Sample::from_bytes(epw("062400", 30).as_bytes(), false).unwrap();
        assert!(matches!(
            suggest(&sample, "x.epw", "x".into()),
            Err(SuggestError::NoTime(_))
        ));
        let csv = Sample::from_bytes(b"time,t\n2024-01-01T00:00Z,1\n", false).unwrap();
        assert!(!is_epw(&csv));
    }
}
