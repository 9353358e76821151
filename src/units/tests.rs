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
        assert_eq!(q.units()[0], q.canonical_unit());
        for &u in q.units() {
            assert_eq!(u.quantity(), q);
        }
    }
    let listed: usize = Quantity::ALL.iter().map(|q| q.units().len()).sum();
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
    fn parse_never_panics(s in any::<String>()) {
        let _ = Unit::parse(&s);
    }
}
