//! The metadata line of the preamble, and the `[metadata]` section: the fields the
//! sensor and the zone are taken from.

use crate::timestamp::parse_offset;

use super::further::snake;
use super::out::{Out, toml_key};
use super::time::Zone;
use super::{Ctx, Line, Meta, MetaField};

/// Field names of environment lines whose layout their format documents, by the format
/// tag in field 1, with whether a reading keeps the field (its source's identity) or it
/// is only listed (format, firmware, program). Campbell Scientific TOA5: format, station
/// name, logger model, serial number, OS version, program, program signature, table.
const KNOWN_LAYOUTS: [(&str, &[(&str, bool)]); 1] = [(
    "TOA5",
    &[
        ("format", false),
        ("station", true),
        ("logger", true),
        ("serial", true),
        ("os", false),
        ("program", false),
        ("signature", false),
        ("table", true),
    ],
)];

/// The metadata line among the `preamble` lines, if any: its fields named by the line
/// before it when that line is all names and as wide (as Netatmo writes them), by the
/// documented layout of its format ([`KNOWN_LAYOUTS`]), else `fieldN`.
pub(super) fn find(preamble: &[Line], cx: &Ctx) -> Option<Meta> {
    let number = |s: &str| cx.number(s);
    preamble.iter().rev().find(|l| l.fields.len() > 1).map(|l| {
        let names_line = preamble
            .iter()
            .find(|p| p.no + 1 == l.no && p.fields.len() == l.fields.len())
            .filter(|p| p.fields.iter().all(|f| number(f).is_none()));
        let layout = KNOWN_LAYOUTS
            .iter()
            .find(|(tag, names)| l.fields[0] == *tag && l.fields.len() == names.len())
            .map(|(_, names)| *names);
        let mut fields: Vec<MetaField> = l
            .fields
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let (name, keep) = match (names_line, layout) {
                    (Some(p), _) => {
                        let k = snake(&p.fields[i]);
                        // A name the line repeats would be a duplicate key: numbered.
                        let repeated = p.fields.iter().filter(|f| snake(f) == k).count() > 1;
                        let k = if repeated {
                            format!("{k}_{}", i + 1)
                        } else {
                            k
                        };
                        let named = !k.is_empty() && !k.starts_with('_');
                        (named.then_some(k), named && !v.is_empty())
                    }
                    (None, Some(names)) => (Some(names[i].0.to_owned()), names[i].1),
                    (None, None) => (None, false),
                };
                MetaField {
                    name: name.unwrap_or_else(|| format!("field{}", i + 1)),
                    index: i + 1,
                    value: v.clone(),
                    keep,
                }
            })
            .collect();
        // A bare `name` beside a device's name (Netatmo's Name;…;ModuleName) is the
        // name of the station the device belongs to.
        if fields
            .iter()
            .any(|f| DEVICE_FIELDS.contains(&f.name.as_str()))
            && !fields.iter().any(|f| f.name == "station")
            && let Some(f) = fields.iter_mut().find(|f| f.name == "name")
        {
            f.name = "station".to_owned();
        }
        (l.no, fields)
    })
}

/// Field names of the device that measured (a module of a station, a logger), preferred
/// as the sensor over the station's own name: the file holds that device's readings.
const DEVICE_FIELDS: [&str; 8] = [
    "module",
    "module_name",
    "sensor",
    "sensor_name",
    "device",
    "device_name",
    "logger_name",
    "probe",
];

/// Field names of the station or site the readings come from.
const STATION_FIELDS: [&str; 12] = [
    "station",
    "station_name",
    "stationname",
    "name",
    "site",
    "site_name",
    "plot_title",
    "station_id",
    "site_id",
    "location_id",
    "location",
    "location_name",
];

/// The metadata field naming the sensor: a device field (module, sensor, device) before a
/// station field (station, name, site), else the first text field after field 1 that
/// looks like an id. Returns the field and the evidence.
fn sensor_field<'m>(
    fields: &'m [MetaField],
    number: &impl Fn(&str) -> Option<f64>,
) -> Option<(&'m MetaField, String)> {
    let named = |list: &[&str]| {
        fields
            .iter()
            .find(|f| list.contains(&f.name.as_str()) && f.value.chars().any(char::is_alphanumeric))
    };
    if let Some(d) = named(&DEVICE_FIELDS) {
        let of = named(&STATION_FIELDS)
            .map(|st| format!(" of {} {:?}", st.name, st.value))
            .unwrap_or_default();
        return Some((
            d,
            format!(
                "the readings are the {} {:?}{of} (a device field names the sensor before a station field)",
                d.name, d.value
            ),
        ));
    }
    if let Some(st) = named(&STATION_FIELDS) {
        return Some((
            st,
            format!("the metadata line names the {}: {:?}", st.name, st.value),
        ));
    }
    // A station number (TMY3's USAF `703165`): digits only, five or more (four could
    // be a year).
    let number_id = fields.iter().find(|f| {
        f.value.len() >= 5 && f.value.len() <= 12 && f.value.bytes().all(|b| b.is_ascii_digit())
    });
    if let Some(f) = number_id {
        return Some((
            f,
            format!(
                "ASSUMED: field {} of the metadata line, {:?}, a station number, names the station; confirm",
                f.index, f.value
            ),
        ));
    }
    fields
        .iter()
        .skip(1)
        .find(|f| {
            f.value.chars().any(char::is_alphanumeric)
                && number(&f.value).is_none()
                && f.value
                    .chars()
                    .all(|c| c.is_alphanumeric() || "_-. ".contains(c))
        })
        .map(|f| {
            (
                f,
                format!(
                    "ASSUMED: field {} of the metadata line, {:?}, names the station; confirm",
                    f.index, f.value
                ),
            )
        })
}

/// Writes the `[metadata]` section when a field of `meta` names the sensor (no sensor
/// or entity column), names the zone, or is named well enough to keep in each reading
/// (`meta_<name>` in `extra`); returns the sensor's (field, evidence).
pub(super) fn write(
    out: &mut Out,
    cx: &Ctx,
    meta: Option<&Meta>,
    no_sensor_column: bool,
    zone: &Zone,
) -> Option<(String, String)> {
    let number = |s: &str| cx.number(s);
    let mut meta_used: Vec<(String, usize)> = Vec::new();
    let mut sensor_from_meta: Option<(String, String)> = None;
    if let Some((_, fields)) = meta
        && no_sensor_column
        && let Some((f, why)) = sensor_field(fields, &number)
    {
        let n = if f.name.starts_with("field") {
            "station".to_owned()
        } else {
            f.name.clone()
        };
        meta_used.push((n.clone(), f.index));
        sensor_from_meta = Some((n, why));
    }
    if let Zone::Metadata { field, index, .. } = zone {
        meta_used.push((field.clone(), *index));
    }
    if let Some((_, fields)) = meta
        && (!meta_used.is_empty() || fields.iter().any(|f| f.keep))
    {
        for f in fields {
            if f.keep && !meta_used.iter().any(|(_, i)| *i == f.index) {
                meta_used.push((f.name.clone(), f.index));
            }
        }
        meta_used.sort_by_key(|(_, i)| *i);
    }
    if let Some((line, fields)) = meta
        && !meta_used.is_empty()
    {
        out.section("metadata");
        out.kv("line", &line.to_string(), Some("the metadata line"));
        out.kv(
            "fields",
            &format!(
                "{{ {} }}",
                meta_used
                    .iter()
                    .map(|(n, i)| format!("{} = {i}", toml_key(n)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Some("each kept in every reading as meta_<name>, the sensor's as its id"),
        );
        let all: Vec<String> = fields
            .iter()
            .map(|f| {
                format!(
                    "{} = {} ({} {:?})",
                    f.name,
                    f.index,
                    looks_like(&f.value, &number),
                    f.value
                )
            })
            .collect();
        out.line(&format!("# fields: {}", all.join("; ")));
    }
    sensor_from_meta
}

fn looks_like(v: &str, number: &impl Fn(&str) -> Option<f64>) -> &'static str {
    if v.is_empty() {
        "empty"
    } else if parse_offset(v).is_some()
        && (v.starts_with('+') || v.starts_with('-') || v.starts_with("UTC"))
    {
        "a signed offset"
    } else if let Some(x) = number(v) {
        if v.contains('.') && x.abs() <= 180.0 {
            "a coordinate"
        } else {
            "an id"
        }
    } else {
        "a name"
    }
}

#[cfg(test)]
mod tests {

    use crate::ops::suggest::suggested_text as run;

    const NETATMO: &str = "Name;Long;Lat;ModuleName;ModuleType\n\
\"Hillside\";7.4471;46.9481;\"Living\";Indoor\n\
Timestamp;Temperature;Humidity\n\
1729987200;21.8;52\n\
1729990800;21.6;52\n";

    #[test]
    fn a_device_field_names_the_sensor_before_the_station() {
        let t = run("Hillside_Living_1.csv", NETATMO);
        assert!(t.contains("metadata = \"module_name\""), "{t}");
        assert!(
            t.contains(
                "fields = { station = 1, long = 2, lat = 3, module_name = 4, module_type = 5 }"
            ),
            "{t}"
        );
        assert!(
            t.contains("the readings are the module_name \"Living\" of station \"Hillside\""),
            "{t}"
        );
    }

    #[test]
    fn a_station_field_alone_names_the_sensor_and_keeps_its_name() {
        let t = run(
            "x_1.csv",
            "Name;Lat\n\"Hillside\";46.9\nTimestamp;Temperature;Humidity\n1729987200;21.8;50\n1729990800;21.6;51\n",
        );
        assert!(t.contains("metadata = \"name\""), "{t}");
        assert!(t.contains("fields = { name = 1, lat = 2 }"), "{t}");
    }

    #[test]
    fn toa5_fields_are_named_by_the_format_and_only_identity_is_kept() {
        let t = run(
            "TOA5_x.dat",
            "\"TOA5\",\"Pond\",\"CR6\",\"77\",\"OS\",\"CPU:p.CR6\",\"123\",\"Hourly\"\n\
\"TIMESTAMP\",\"RECORD\",\"AirT_C_Avg\",\"RH\",\"a\",\"b\",\"c\",\"d\"\n\
\"TS\",\"RN\",\"Deg C\",\"%\",\"\",\"\",\"\",\"\"\n\
\"2024-03-10 01:00:00\",1,4.2,81,x,x,x,x\n\
\"2024-03-10 02:00:00\",2,4.1,82,x,x,x,x\n",
        );
        assert!(
            t.contains("preamble = 1"),
            "same width, still the metadata line: {t}"
        );
        assert!(
            t.contains("fields = { station = 2, logger = 3, serial = 4, table = 8 }"),
            "{t}"
        );
        assert!(t.contains("metadata = \"station\""), "{t}");
    }

    #[test]
    fn repeated_or_empty_names_still_give_a_profile() {
        let t = run(
            "x_1.csv",
            "Name;Name;;Site\n\"A\";\"B\";7;\n\
Timestamp;Temperature;Humidity\n1729987200;21.8;50\n1729990800;21.6;51\n",
        );
        assert!(t.contains("fields = { name_1 = 1, name_2 = 2 }"), "{t}");
        // No device or station word among the names: the first text after field 1, assumed.
        assert!(t.contains("metadata = \"name_2\"  # ASSUMED"), "{t}");
    }

    #[test]
    fn unnamed_fields_give_an_assumed_station_and_are_not_kept() {
        let t = run(
            "x_1.csv",
            "logger,Pond_3,99\nTimestamp,Temperature\n2024-01-01T00:00:00Z,1\n2024-01-01T01:00:00Z,2\n",
        );
        assert!(t.contains("metadata = \"station\"  # ASSUMED"), "{t}");
        assert!(t.contains("fields = { station = 2 }"), "{t}");
    }
}
