//! Readings in COPY's binary format, for `COPY sensor_readings … FROM STDIN WITH
//! (FORMAT binary)`: the header, one encoded row per reading, the trailer.

use crate::enrich::EnrichedRow;

pub(super) const COPY_READINGS: &str = "COPY sensor_readings (file_id, line, ts, sensor_id, \
    temperature, humidity, pressure, temperature_k, temperature_norm, humidity_norm, \
    pressure_norm, extra, qc_flags) FROM STDIN WITH (FORMAT binary)";

/// Bytes gathered before one COPY message is sent.
pub(super) const COPY_CHUNK: usize = 256 * 1024;

/// COPY binary format: signature, flags, header extension length.
pub(super) const BINARY_HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// A field count of -1 ends the stream.
pub(super) const BINARY_TRAILER: i16 = -1;
/// Microseconds from the Unix epoch to PostgreSQL's, 2000-01-01T00:00:00Z.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// Appends one row in COPY binary format: the field count, then each field as a length
/// and its bytes in the type's binary representation (-1 for NULL). Binary rather than
/// text COPY: it spares the server parsing every value.
pub(super) fn encode_row(buf: &mut Vec<u8>, file_id: &[u8; 16], row: &EnrichedRow) {
    let r = &row.reading;
    buf.extend_from_slice(&13i16.to_be_bytes());
    field(buf, file_id);
    field(buf, &(r.line as i64).to_be_bytes());
    field(
        buf,
        &(r.timestamp.timestamp_micros() - PG_EPOCH_MICROS).to_be_bytes(),
    );
    field(buf, r.sensor_id.as_bytes());
    for v in [
        r.temperature,
        r.humidity,
        r.pressure,
        row.temperature_k,
        row.temperature_norm,
        row.humidity_norm,
        row.pressure_norm,
    ] {
        match v {
            Some(v) => field(buf, &v.to_be_bytes()),
            None => null(buf),
        }
    }
    match &r.extra {
        Some(json) => {
            // jsonb's binary form: a version byte (1), then the JSON text.
            buf.extend_from_slice(&(json.len() as i32 + 1).to_be_bytes());
            buf.push(1);
            buf.extend_from_slice(json.as_bytes());
        }
        None => null(buf),
    }
    field(buf, &(row.qc_flags as i16).to_be_bytes());
}

fn field(buf: &mut Vec<u8>, bytes: &[u8]) {
    buf.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
    buf.extend_from_slice(bytes);
}

fn null(buf: &mut Vec<u8>) {
    buf.extend_from_slice(&(-1i32).to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::Reading;

    #[test]
    fn rows_encode_in_copy_binary_format() {
        let row = EnrichedRow {
            reading: Reading {
                line: 42,
                timestamp: "2000-01-01T00:00:01.5Z".parse().unwrap(),
                sensor_id: "a\tb".into(),
                temperature: Some(21.5),
                humidity: None,
                pressure: None,
                extra: Some(r#"{"k":1}"#.into()),
                further: Vec::new(),
                coded_missing: 0,
            },
            temperature_k: Some(294.65),
            temperature_norm: None,
            humidity_norm: None,
            pressure_norm: None,
            qc_flags: 0,
            further_qc: Default::default(),
        };
        let mut buf = Vec::new();
        encode_row(&mut buf, &[7u8; 16], &row);
        let mut want: Vec<u8> = vec![0, 13];
        want.extend([0, 0, 0, 16]);
        want.extend([7u8; 16]);
        want.extend([0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 42]);
        want.extend([0, 0, 0, 8]);
        want.extend(1_500_000i64.to_be_bytes());
        want.extend([0, 0, 0, 3, b'a', b'\t', b'b']);
        want.extend([0, 0, 0, 8]);
        want.extend(21.5f64.to_be_bytes());
        want.extend([0xff; 8]); // humidity, pressure: NULL
        want.extend([0, 0, 0, 8]);
        want.extend(294.65f64.to_be_bytes());
        want.extend([0xff; 12]); // three *_norm NULLs
        want.extend([0, 0, 0, 8, 1]);
        want.extend(br#"{"k":1}"#);
        want.extend([0, 0, 0, 2, 0, 0]); // qc_flags 0
        assert_eq!(buf, want);
        assert_eq!(BINARY_HEADER.len(), 19);
    }
}
