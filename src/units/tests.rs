use super::*;
use proptest::prelude::*;

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

#[test]
fn exact_conversion_points() {
    let cases: &[(Unit, f64, f64, f64)] = &[
        (Unit::Fahrenheit, 32.0, 0.0, 1e-12),
        (Unit::Fahrenheit, 212.0, 100.0, 1e-12),
        (Unit::Fahrenheit, -40.0, -40.0, 1e-12),
        (Unit::Kelvin, 0.0, -273.15, 0.0),
        (Unit::Kelvin, 273.15, 0.0, 0.0),
        (Unit::Celsius, 21.5, 21.5, 0.0),
        (Unit::Kilopascal, 1.0, 10.0, 0.0),
        (Unit::Kilopascal, 101.325, 1013.25, 1e-9),
        (Unit::Pascal, 100.0, 1.0, 0.0),
        (Unit::Pascal, 101_325.0, 1013.25, 1e-9),
        (Unit::Millibar, 1.0, 1.0, 0.0),
        (Unit::Hectopascal, 1013.25, 1013.25, 0.0),
        (Unit::InchMercury, 1.0, 33.8639, 1e-4),
        (Unit::InchMercury, 29.92, 1013.21, 1e-2),
        (Unit::MillimetreMercury, 1.0, 1.333224, 1e-6),
        (Unit::MillimetreMercury, 760.0, 1013.25, 1e-3),
        (Unit::Fraction, 0.5, 50.0, 0.0),
        (Unit::Fraction, 1.0, 100.0, 0.0),
        (Unit::Percent, 48.0, 48.0, 0.0),
    ];
    for &(unit, v, want, tol) in cases {
        let got = unit.to_canonical(v);
        assert!(close(got, want, tol), "{unit} {v} -> {got}, want {want}");
        assert!(
            close(unit.from_canonical(want), v, tol.max(1e-12) * 10.0),
            "{unit} back"
        );
    }
}

#[test]
fn quantities_and_canonical_units() {
    for q in Quantity::ALL {
        assert_eq!(q.canonical_unit().quantity(), q);
        assert_eq!(q.units().next(), Some(q.canonical_unit()));
        for u in q.units() {
            assert_eq!(u.quantity(), q);
        }
    }
    let listed: usize = Quantity::ALL.iter().map(|q| q.units().count()).sum();
    assert_eq!(listed, Unit::ALL.len());
    assert_eq!(Quantity::Temperature.name(), "temperature");
    assert_eq!(Quantity::Pressure.to_string(), "pressure");
    for u in Unit::ALL {
        if u == u.quantity().canonical_unit() {
            assert_eq!(u.to_canonical(12.5), 12.5);
        }
    }
}

#[test]
fn parse_reads_common_spellings() {
    use Unit::*;
    let cases: &[(&str, Unit)] = &[
        ("degC", Celsius),
        ("°C", Celsius),
        ("ºC", Celsius),
        ("℃", Celsius),
        ("Â°C", Celsius),
        ("\u{FFFD}C", Celsius),
        ("C", Celsius),
        ("c", Celsius),
        ("deg C", Celsius),
        ("Deg C", Celsius),
        ("deg_c", Celsius),
        ("deg. C", Celsius),
        ("degrees C", Celsius),
        ("Degrees Celsius", Celsius),
        ("celsius", Celsius),
        (" Celsius ", Celsius),
        ("° C", Celsius),
        ("degF", Fahrenheit),
        ("°F", Fahrenheit),
        ("℉", Fahrenheit),
        ("Â°F", Fahrenheit),
        ("F", Fahrenheit),
        ("deg F", Fahrenheit),
        ("Fahrenheit", Fahrenheit),
        ("K", Kelvin),
        ("kelvin", Kelvin),
        ("°K", Kelvin),
        ("degK", Kelvin),
        ("%", Percent),
        ("%RH", Percent),
        ("% RH", Percent),
        ("%rh", Percent),
        ("pct", Percent),
        ("PCT", Percent),
        ("percent", Percent),
        ("fraction", Fraction),
        ("Fraction", Fraction),
        ("frac", Fraction),
        ("hPa", Hectopascal),
        ("HPA", Hectopascal),
        ("mbar", Millibar),
        ("mBar", Millibar),
        ("MBAR", Millibar),
        ("mb", Millibar),
        ("millibars", Millibar),
        ("Pa", Pascal),
        ("pascal", Pascal),
        ("kPa", Kilopascal),
        ("KPA", Kilopascal),
        ("inHg", InchMercury),
        ("in Hg", InchMercury),
        ("in. Hg", InchMercury),
        ("mmHg", MillimetreMercury),
        ("mm Hg", MillimetreMercury),
    ];
    for &(text, want) in cases {
        assert_eq!(Unit::parse(text), Some(want), "{text:?}");
        assert_eq!(text.parse::<Unit>(), Ok(want), "{text:?}");
    }
}

#[test]
fn parse_refuses_other_text() {
    for text in [
        "",
        " ",
        "°",
        "deg",
        "degrees",
        "°R",
        "degR",
        "psi",
        "bar",
        "atm",
        "torr",
        "m/s",
        "W/m^2",
        "V",
        "ppm",
        "mm",
        "temp",
        "t",
        "x",
        "cc",
        "ff",
        "kk",
        "MPa",
        "mPa",
        "Gpa",
        "percentage of something",
        "0-1",
        "%vol",
    ] {
        assert_eq!(Unit::parse(text), None, "{text:?}");
    }
    let err = "psi".parse::<Unit>().unwrap_err();
    assert!(err.to_string().contains("unknown unit `psi`"), "{err}");
    assert!(err.to_string().contains("degF"), "{err}");
}

#[test]
fn names_round_trip_and_serde_uses_them() {
    for u in Unit::ALL {
        assert_eq!(Unit::parse(u.name()), Some(u), "{}", u.name());
        assert_eq!(u.to_string(), u.name());
        let json = serde_json::to_string(&u).unwrap();
        assert_eq!(json, format!("\"{}\"", u.name()));
        assert_eq!(serde_json::from_str::<Unit>(&json).unwrap(), u);
    }
    assert_eq!(
        serde_json::from_str::<Unit>("\"°F\"").unwrap(),
        Unit::Fahrenheit
    );
    let err = serde_json::from_str::<Unit>("\"psi\"")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("unknown unit `psi`") && err.contains("inHg"),
        "{err}"
    );
    let err = serde_json::from_str::<Unit>("3").unwrap_err().to_string();
    assert!(err.contains("a unit such as"), "{err}");
}

#[test]
fn physical_limits() {
    use Quantity::*;
    let cases: &[(Quantity, f64, bool)] = &[
        (Temperature, -273.15, true),
        (Temperature, -273.16, false),
        (Temperature, -7999.0, false),
        (Temperature, 1e6, true),
        (Humidity, 0.0, true),
        (Humidity, -0.001, false),
        (Humidity, 120.0, true),
        (Pressure, 0.0, false),
        (Pressure, -1.0, false),
        (Pressure, 1e-6, true),
        (Temperature, f64::NAN, false),
        (Temperature, f64::INFINITY, false),
        (Pressure, f64::INFINITY, false),
        (Humidity, f64::NEG_INFINITY, false),
    ];
    for &(q, v, want) in cases {
        assert_eq!(physically_possible(q, v), want, "{q} {v}");
    }
    // Absolute zero written in each temperature unit is still possible after conversion.
    for u in Quantity::Temperature.units() {
        let zero = u.from_canonical(ABSOLUTE_ZERO_C);
        assert!(
            physically_possible(Temperature, u.to_canonical(zero)),
            "{u}"
        );
    }
    assert!(!physically_possible(
        Temperature,
        Unit::Fahrenheit.to_canonical(-460.0)
    ));
    assert!(!physically_possible(
        Temperature,
        Unit::Kelvin.to_canonical(-0.01)
    ));
    assert!(!physically_possible(
        Humidity,
        Unit::Fraction.to_canonical(-0.01)
    ));
    assert!(!physically_possible(
        Pressure,
        Unit::InchMercury.to_canonical(0.0)
    ));
}

fn marker(name: &str) -> (String, Option<UnitMarker>) {
    split_header_unit(name)
}

fn known(u: Unit) -> Option<UnitMarker> {
    Some(UnitMarker::Known(u))
}

fn other(s: &str) -> Option<UnitMarker> {
    Some(UnitMarker::Other(s.to_owned()))
}

fn unknown(s: &str) -> Option<UnitMarker> {
    Some(UnitMarker::Unknown(s.to_owned()))
}

#[test]
fn header_markers_are_read() {
    use Unit::*;
    let cases: &[(&str, &str, Option<UnitMarker>)] = &[
        // brackets
        ("Temp (F)", "Temp", known(Fahrenheit)),
        ("Temp (C)", "Temp", known(Celsius)),
        ("Temp (K)", "Temp", known(Kelvin)),
        ("Temp [°F]", "Temp", known(Fahrenheit)),
        ("Temperature [deg C]", "Temperature", known(Celsius)),
        ("Temperature [Deg C]", "Temperature", known(Celsius)),
        ("Temperature (degC)", "Temperature", known(Celsius)),
        ("Air Temp (°C)", "Air Temp", known(Celsius)),
        ("Pressure [mBar]", "Pressure", known(Millibar)),
        ("Pressure (kPa)", "Pressure", known(Kilopascal)),
        ("Pressure (inHg)", "Pressure", known(InchMercury)),
        ("Barometer (mmHg)", "Barometer", known(MillimetreMercury)),
        ("RH (%)", "RH", known(Percent)),
        ("Humidity (%RH)", "Humidity", known(Percent)),
        ("Humidity [fraction]", "Humidity", known(Fraction)),
        ("Battery (%)", "Battery", known(Percent)),
        ("Pressure [°C]", "Pressure", known(Celsius)),
        // HOBO, with and without serials, commas or quotes
        ("Temp (°C) #9724974", "Temp", known(Celsius)),
        ("RH (%) #9724974", "RH", known(Percent)),
        (
            "Temp, °C (LGR S/N: 20731514, SEN S/N: 20731514)",
            "Temp",
            known(Celsius),
        ),
        (
            "Temp, °F (LGR S/N: 20731514, SEN S/N: 20731514, LBL: Creek)",
            "Temp",
            known(Fahrenheit),
        ),
        ("Temp, °C()", "Temp", known(Celsius)),
        ("Temp, °C", "Temp", known(Celsius)),
        ("RH, %  (LGR S/N: 1)", "RH", known(Percent)),
        ("Abs Pres, kPa (LGR S/N: 1)", "Abs Pres", known(Kilopascal)),
        ("Dew Point, °F (LGR S/N: 1)", "Dew Point", known(Fahrenheit)),
        ("Temp, Â°C (LGR S/N: 1)", "Temp", known(Celsius)),
        ("Temp, \u{FFFD}C (LGR S/N: 1)", "Temp", known(Celsius)),
        ("Batt, V (LGR S/N: 1)", "Batt", other("V")),
        (
            "Intensity, lum/ft² (LGR S/N: 1)",
            "Intensity",
            other("lum/ft²"),
        ),
        // a degree sign anywhere
        ("Temp°F", "Temp", known(Fahrenheit)),
        ("°C", "", known(Celsius)),
        ("°F", "", known(Fahrenheit)),
        ("TempÂ°C", "Temp", known(Celsius)),
        ("Temp ℃", "Temp", known(Celsius)),
        ("Temp °C #12", "Temp", known(Celsius)),
        ("Temp °Celsius", "Temp", known(Celsius)),
        ("Temperature [°C] Avg", "Temperature Avg", known(Celsius)),
        // suffixes after a quantity word
        ("temp_f", "temp", known(Fahrenheit)),
        ("temp_c", "temp", known(Celsius)),
        ("temp_k", "temp", known(Kelvin)),
        ("TEMP_F", "TEMP", known(Fahrenheit)),
        ("t_f", "t", known(Fahrenheit)),
        ("air_temp_c", "air_temp", known(Celsius)),
        ("airtemp_f", "airtemp", known(Fahrenheit)),
        ("AirTemp_F", "AirTemp", known(Fahrenheit)),
        ("temp1_f", "temp1", known(Fahrenheit)),
        ("temp_degf", "temp", known(Fahrenheit)),
        ("Temp F", "Temp", known(Fahrenheit)),
        ("Temp deg C", "Temp", known(Celsius)),
        ("temp_deg_c", "temp", known(Celsius)),
        ("Temperature degC", "Temperature", known(Celsius)),
        ("rh_pct", "rh", known(Percent)),
        ("humidity_pct", "humidity", known(Percent)),
        ("humidity_fraction", "humidity", known(Fraction)),
        ("RH%", "RH", known(Percent)),
        ("RH %", "RH", known(Percent)),
        ("pressure_kpa", "pressure", known(Kilopascal)),
        ("pressure_hpa", "pressure", known(Hectopascal)),
        ("pressure_mbar", "pressure", known(Millibar)),
        ("pressure_pa", "pressure", known(Pascal)),
        ("pres_inhg", "pres", known(InchMercury)),
        ("slp_mmhg", "slp", known(MillimetreMercury)),
        ("Pressure hPa", "Pressure", known(Hectopascal)),
        ("AirT_C", "AirT", known(Celsius)),
        (
            "Outdoor Temperature (°F)",
            "Outdoor Temperature",
            known(Fahrenheit),
        ),
        ("Temp(F)", "Temp", known(Fahrenheit)),
        ("Temp (F) (LGR S/N: 1)", "Temp", known(Fahrenheit)),
        (
            "Temperature (F) - Sensor 2",
            "Temperature - Sensor 2",
            known(Fahrenheit),
        ),
        ("Temperature, C", "Temperature", known(Celsius)),
        ("temperature_fahrenheit", "temperature", known(Fahrenheit)),
        ("T_air_degC", "T_air", known(Celsius)),
        ("humidity_frac", "humidity", known(Fraction)),
        ("Rel. Humidity (%)", "Rel. Humidity", known(Percent)),
        ("Pressure (mb)", "Pressure", known(Millibar)),
        // markers we recognise but cannot read
        ("Temp (degR)", "Temp", unknown("degR")),
        ("Temp (°R)", "Temp", unknown("°R")),
        ("Temp (°)", "Temp", unknown("°")),
        ("Temp (deg)", "Temp", unknown("deg")),
        ("Temp°X", "Temp", unknown("°X")),
        ("Pressure [psi]", "Pressure", unknown("psi")),
        ("Pressure (bar)", "Pressure", unknown("bar")),
        ("pressure_psi", "pressure", unknown("psi")),
        ("Boiler_P_bar", "Boiler_P", unknown("bar")),
        ("Temp, °Ré", "Temp", unknown("°Ré")),
        ("Foo (10°C)", "Foo", unknown("10°C")),
        // scaled units are refused, never read as the plain unit
        ("T (0.1 °C)", "T", unknown("0.1 °C")),
        ("Temp [°C*10]", "Temp", unknown("°C*10")),
        // units of other quantities
        ("Wind Speed (m/s)", "Wind Speed", other("m/s")),
        ("Solar [W/m^2]", "Solar", other("W/m^2")),
        ("Solar Rad (W/m²)", "Solar Rad", other("W/m²")),
        ("PAR (µmol/m²/s)", "PAR", other("µmol/m²/s")),
        ("CO2 (ppm)", "CO2", other("ppm")),
        ("Rain (mm)", "Rain", other("mm")),
        ("Noise (dB)", "Noise", other("dB")),
        ("Light (lux)", "Light", other("lux")),
        ("Wind Dir (°)", "Wind Dir", other("°")),
        ("Wind Dir (deg)", "Wind Dir", other("deg")),
        ("Lat (°N)", "Lat", other("°N")),
        ("Tyre (psi)", "Tyre", other("psi")),
        ("Humidity (g/m3)", "Humidity", other("g/m3")),
    ];
    for (name, base, want) in cases {
        let (got_base, got) = marker(name);
        assert_eq!((got_base.as_str(), &got), (*base, want), "{name:?}");
        assert!(got_base.len() <= name.len());
    }
}

#[test]
fn names_without_a_marker_are_left_alone() {
    for name in [
        "t",
        "temp",
        "Temperature",
        "temp_max",
        "temp_min",
        "temp_avg",
        "Temp Max",
        "field_c",
        "speed_k",
        "sensor_f",
        "battery_pct",
        "dewpoint_x",
        "WaterT_C(1)",
        "WaterT_C(2)",
        "AirT_C_Avg",
        "BattV_Min",
        "Temp (avg)",
        "Temp (min)",
        "Temp (in)",
        "Temp (inside)",
        "Temp (1)",
        "Temp (A)",
        "Temp (R)",
        "Sensor (A)",
        "Phase (C)",
        "Zone (F)",
        "Battery (V)",
        "Speed (K)",
        "Coupler Detached (LGR S/N: 20731514)",
        "End Of File (LGR S/N: 20731514)",
        "Date Time, GMT-05:00",
        "Date-Time (EDT)",
        "Timezone : Europe/Berlin",
        "#",
        "",
        "   ",
        "()",
        "(",
        ")",
        "Temp (",
        "Temp )F(",
        "_f",
        "temp_",
        "%",
        "Caf\u{FFFD}",
        "Caf\u{FFFD}Cx",
        "template_c",
        "temp_rh_c",
        "sensor_id",
        "_time",
        "_value",
        "entity_id",
        "TIC101.PV",
        "field1",
        "Pressure (hPa*10)",
        "Hi Temp",
        "temp_f_avg",
        "Rain (in)",
    ] {
        let (base, got) = marker(name);
        assert_eq!(got, None, "{name:?}");
        assert_eq!(base, name.trim(), "{name:?}");
    }
}

#[test]
fn quantity_words() {
    use Quantity::*;
    let cases: &[(&str, Option<Quantity>)] = &[
        ("t", Some(Temperature)),
        ("T", Some(Temperature)),
        ("temp", Some(Temperature)),
        ("Temperature", Some(Temperature)),
        ("air_temp", Some(Temperature)),
        ("AirTemp", Some(Temperature)),
        ("airtemp", Some(Temperature)),
        ("AirT", Some(Temperature)),
        ("WaterT", Some(Temperature)),
        ("Dew Point Temp", Some(Temperature)),
        ("temp2", Some(Temperature)),
        ("rh", Some(Humidity)),
        ("Relative Humidity", Some(Humidity)),
        ("hum", Some(Humidity)),
        ("pressure", Some(Pressure)),
        ("Abs Pres", Some(Pressure)),
        ("Barometer", Some(Pressure)),
        ("p", Some(Pressure)),
        ("temp_rh", None),
        ("field", None),
        ("speed", None),
        ("template", None),
        ("Date Time", None),
        ("", None),
    ];
    for &(name, want) in cases {
        assert_eq!(quantity_word(name), want, "{name:?}");
        assert_eq!(
            is_temperature_word(name),
            want == Some(Temperature),
            "{name:?}"
        );
    }
}

fn any_unit() -> impl Strategy<Value = Unit> {
    proptest::sample::select(Unit::ALL.to_vec())
}

/// Values people write, over a wide range of magnitudes and both signs.
fn any_value() -> impl Strategy<Value = f64> {
    prop_oneof![-1e4f64..1e4, -1e12f64..1e12, -1.0f64..1.0]
}

proptest! {
    #[test]
    fn canonical_round_trips(unit in any_unit(), v in any_value()) {
        let back = unit.from_canonical(unit.to_canonical(v));
        prop_assert!((back - v).abs() <= 1e-9 * v.abs().max(1.0), "{unit} {v} -> {back}");
        let fwd = unit.to_canonical(unit.from_canonical(v));
        prop_assert!((fwd - v).abs() <= 1e-9 * v.abs().max(1.0), "{unit} {v} <- {fwd}");
    }

    #[test]
    fn conversions_are_increasing(unit in any_unit(), a in any_value(), b in any_value()) {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        prop_assert!(unit.to_canonical(lo) <= unit.to_canonical(hi));
        prop_assert!(unit.from_canonical(lo) <= unit.from_canonical(hi));
        // Strictly, for values that differ by more than rounding.
        if hi - lo > 1e-9 * lo.abs().max(hi.abs()).max(1.0) {
            prop_assert!(unit.to_canonical(lo) < unit.to_canonical(hi), "{unit} {lo} {hi}");
            prop_assert!(unit.from_canonical(lo) < unit.from_canonical(hi), "{unit} {lo} {hi}");
        }
    }

    #[test]
    fn physical_limits_hold_in_every_unit(unit in any_unit(), v in any_value()) {
        let q = unit.quantity();
        // The limit written in this unit; values clearly on either side of it.
        let limit = match q {
            Quantity::Temperature => unit.from_canonical(ABSOLUTE_ZERO_C),
            Quantity::Humidity | Quantity::Pressure => 0.0,
        };
        let margin = 1e-9 * limit.abs().max(1.0);
        let possible = physically_possible(q, unit.to_canonical(v));
        if v > limit + margin {
            prop_assert!(possible, "{unit} {v}");
        } else if v < limit - margin {
            prop_assert!(!possible, "{unit} {v}");
        }
        // At the limit itself: possible for temperature and humidity, not for pressure.
        prop_assert_eq!(
            physically_possible(q, unit.to_canonical(limit)),
            q != Quantity::Pressure
        );
    }

    #[test]
    fn split_never_panics_and_never_grows(name in any::<String>()) {
        let (base, _) = split_header_unit(&name);
        prop_assert!(base.len() <= name.len());
    }

    #[test]
    fn split_never_panics_on_header_like_text(
        name in "[ A-Za-z_°ºÂ℃\u{FFFD}%#,:/()\\[\\]0-9é-]{0,40}"
    ) {
        let (base, marker) = split_header_unit(&name);
        prop_assert!(base.len() <= name.len());
        if marker.is_none() {
            prop_assert_eq!(base.as_str(), name.trim());
        }
    }

    #[test]
    fn a_known_marker_after_a_quantity_word_is_read(
        unit in any_unit(),
        form in 0usize..4,
    ) {
        let word = match unit.quantity() {
            Quantity::Temperature => "Temp",
            Quantity::Humidity => "RH",
            Quantity::Pressure => "Pressure",
        };
        let name = match form {
            0 => format!("{word} ({})", unit.name()),
            1 => format!("{word} [{}]", unit.name()),
            2 => format!("{word}, {} (LGR S/N: 1)", unit.name()),
            _ => format!("{word}_{}", unit.name()),
        };
        let (base, marker) = split_header_unit(&name);
        prop_assert_eq!(base, word);
        prop_assert_eq!(marker, Some(UnitMarker::Known(unit)));
    }

    #[test]
    fn parse_never_panics(s in any::<String>()) {
        let _ = Unit::parse(&s);
    }
}

#[test]
fn split_handles_huge_and_odd_input() {
    let huge = format!("Temp ({})", "x".repeat(1 << 20));
    let (base, marker) = split_header_unit(&huge);
    assert_eq!(marker, None);
    assert_eq!(base, huge);
    let huge_degree = format!("Temp ({}°)", "x".repeat(1 << 16));
    assert!(matches!(
        split_header_unit(&huge_degree).1,
        Some(UnitMarker::Unknown(_))
    ));
    let deep = format!("{}F{}", "(".repeat(10_000), ")".repeat(10_000));
    let _ = split_header_unit(&deep);
    let _ = split_header_unit(&"°".repeat(10_000));
    let _ = split_header_unit(&"_".repeat(10_000));
    let _ = split_header_unit("Â");
    let _ = split_header_unit("\u{FFFD}");
}

#[test]
fn many_brackets_stay_linear() {
    let name = format!("Temp{}", "(x)".repeat(200_000));
    let started = std::time::Instant::now();
    let (_, marker) = split_header_unit(&name);
    assert_eq!(marker, None);
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
}

/// Every unit is one entry of the `units!` table: its name reads back to it, every
/// spelling reads as it, its quantity lists it, the messages that list the units name
/// it, and its conversion goes there and back.
#[test]
fn every_unit_of_the_table_is_read_listed_and_converted() {
    let advice = crate::rule::Rule::UnknownUnit.advice();
    let unknown = UnknownUnit("x".into()).to_string();
    for u in Unit::ALL {
        assert_eq!(Unit::parse(u.name()), Some(u), "{u}");
        assert!(u.quantity().units().any(|x| x == u), "{u}");
        assert!(
            advice.contains(&format!(" {},", u.name()))
                || advice.ends_with(&format!(" {}.", u.name())),
            "{u}: {advice}"
        );
        assert!(unknown.contains(u.name()), "{u}: {unknown}");
        let back = u.from_canonical(u.to_canonical(42.0));
        assert!(close(back, 42.0, 1e-9), "{u}: {back}");
    }
    for &(unit, letter, spellings, degree) in SPELLINGS {
        for s in letter.iter().chain(spellings) {
            assert_eq!(Unit::parse(s), Some(unit), "{s}");
            if degree {
                assert_eq!(Unit::parse(&format!("deg {s}")), Some(unit), "deg {s}");
            } else {
                assert_eq!(Unit::parse(&format!("°{s}")), None, "°{s}");
            }
        }
    }
}
