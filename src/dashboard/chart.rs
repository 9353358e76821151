//! Time charts as SVG, drawn on the server: no script reaches the browser.
//!
//! Hand-written rather than drawn with `plotters`: these charts are lines (and a min–max
//! band) over time with a few labelled ticks, about 150 lines here, and writing the SVG
//! ourselves keeps exact control of what reaches the page — only presentation
//! attributes, since the Content-Security-Policy (`style-src 'self'`) blocks inline
//! `style` attributes, and every text escaped — while adding nothing to the build.

use std::fmt::Write;

use chrono::DateTime;

const WIDTH: f64 = 900.0;
const HEIGHT: f64 = 220.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 28.0;

/// One line of a chart: `(unix seconds, value)` points, oldest first, and optionally
/// a band `(unix seconds, low, high)` drawn under it.
#[derive(Debug, Clone, Default)]
pub struct Series {
    pub label: String,
    /// An SVG colour such as `#1f77b4`.
    pub color: &'static str,
    pub points: Vec<(i64, f64)>,
    pub band: Vec<(i64, f64, f64)>,
    /// Points holding readings with quality flags: `(unix seconds, value, how many)`,
    /// drawn as rings on the line.
    pub flagged: Vec<(i64, f64, u64)>,
}

/// A chart over `[from, to)` (unix seconds). Points further apart than `gap` seconds
/// are not joined, so a silence shows as a break, not a slope.
pub fn time_chart(
    title: &str,
    unit: &str,
    from: i64,
    to: i64,
    gap: i64,
    series: &[Series],
) -> String {
    let to = to.max(from + 1);
    let mut svg = String::with_capacity(8 * 1024);
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{}">"#,
        escape(title)
    );
    let _ = write!(svg, "<title>{}</title>", escape(title));
    let _ = write!(
        svg,
        r##"<rect x="{LEFT}" y="{TOP}" width="{PLOT_W}" height="{PLOT_H}" fill="#fbfbfd" stroke="#ccd"/>"##
    );
    let Some((lo, hi)) = value_bounds(series) else {
        let _ = write!(
            svg,
            r##"<text x="{}" y="{}" text-anchor="middle" fill="#667">no data in this range</text></svg>"##,
            LEFT + PLOT_W / 2.0,
            TOP + PLOT_H / 2.0
        );
        return svg;
    };
    let (lo, hi, step) = nice_range(lo, hi);
    let frame = Frame { from, to, lo, hi };
    value_axis(&mut svg, &frame, step, unit);
    time_axis(&mut svg, &frame);
    for s in series {
        lines(&mut svg, &frame, gap, s);
    }
    // Quality flags: a ring on each point that holds flagged readings.
    for s in series {
        flags(&mut svg, &frame, s);
    }
    legend(&mut svg, series);
    svg.push_str("</svg>");
    svg
}

/// Width and height of the plot area inside the margins.
const PLOT_W: f64 = WIDTH - LEFT - RIGHT;
const PLOT_H: f64 = HEIGHT - TOP - BOTTOM;

/// The lowest and highest finite value of the lines and bands, widened around a flat
/// line; `None` when there is none.
fn value_bounds(series: &[Series]) -> Option<(f64, f64)> {
    let values = series.iter().flat_map(|s| {
        s.points
            .iter()
            .map(|p| p.1)
            .chain(s.band.iter().flat_map(|b| [b.1, b.2]))
    });
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        return None;
    }
    Some(if hi - lo < 1e-9 {
        (lo - 1.0, hi + 1.0)
    } else {
        (lo, hi)
    })
}

/// Where the plot's time and value ranges fall on the drawing.
struct Frame {
    from: i64,
    to: i64,
    lo: f64,
    hi: f64,
}

impl Frame {
    fn x(&self, t: i64) -> f64 {
        LEFT + (t - self.from) as f64 / (self.to - self.from) as f64 * PLOT_W
    }

    fn y(&self, v: f64) -> f64 {
        TOP + (self.hi - v) / (self.hi - self.lo) * PLOT_H
    }
}

/// The horizontal grid with its value labels, and the unit.
fn value_axis(svg: &mut String, frame: &Frame, step: f64, unit: &str) {
    let mut v = frame.lo;
    while v <= frame.hi + step / 2.0 {
        let yy = frame.y(v);
        let _ = write!(
            svg,
            r##"<line x1="{LEFT}" x2="{}" y1="{yy:.1}" y2="{yy:.1}" stroke="#e3e3ea"/><text x="{}" y="{:.1}" text-anchor="end" font-size="11" fill="#445">{}</text>"##,
            WIDTH - RIGHT,
            LEFT - 6.0,
            yy + 4.0,
            escape(&format_value(v, step))
        );
        v += step;
    }
    let _ = write!(
        svg,
        r##"<text x="4" y="{}" font-size="11" fill="#445">{}</text>"##,
        HEIGHT - 8.0,
        escape(unit)
    );
}

/// Time labels: six, formatted to the range's scale.
fn time_axis(svg: &mut String, frame: &Frame) {
    let (from, to) = (frame.from, frame.to);
    let long = to - from > 2 * 86_400;
    for i in 0..=5 {
        let t = from + (to - from) * i / 5;
        let label = DateTime::from_timestamp(t, 0).map_or_else(String::new, |d| {
            d.format(if long { "%m-%d %H:%M" } else { "%H:%M" })
                .to_string()
        });
        let anchor = match i {
            0 => "start",
            5 => "end",
            _ => "middle",
        };
        let _ = write!(
            svg,
            r##"<text x="{:.1}" y="{}" text-anchor="{anchor}" font-size="11" fill="#445">{}</text>"##,
            frame.x(t),
            HEIGHT - 8.0,
            escape(&label)
        );
    }
}

/// One series: its band, then its line, each broken where points are more than `gap`
/// seconds apart.
fn lines(svg: &mut String, frame: &Frame, gap: i64, s: &Series) {
    for run in runs(&s.band, gap, |b| b.0) {
        let mut d = String::new();
        for (i, b) in run.iter().enumerate() {
            let _ = write!(
                d,
                "{}{:.1} {:.1}",
                if i == 0 { "M" } else { " L" },
                frame.x(b.0),
                frame.y(b.2)
            );
        }
        for b in run.iter().rev() {
            let _ = write!(d, " L{:.1} {:.1}", frame.x(b.0), frame.y(b.1));
        }
        let _ = write!(
            svg,
            r#"<path class="band" d="{d} Z" fill="{}" fill-opacity="0.15" stroke="none"/>"#,
            s.color
        );
    }
    for run in runs(&s.points, gap, |p| p.0) {
        let mut d = String::new();
        for (i, p) in run.iter().enumerate() {
            let _ = write!(
                d,
                "{}{:.1} {:.1}",
                if i == 0 { "M" } else { " L" },
                frame.x(p.0),
                frame.y(p.1)
            );
        }
        if run.len() == 1 {
            // A lone point: a short tick so it is visible.
            let _ = write!(d, " l2 0");
        }
        let _ = write!(
            svg,
            r#"<path class="line" d="{d}" fill="none" stroke="{}" stroke-width="1.5"><title>{}</title></path>"#,
            s.color,
            escape(&s.label)
        );
    }
}

/// A ring on each point of `s` that holds readings with quality flags.
fn flags(svg: &mut String, frame: &Frame, s: &Series) {
    for &(t, v, n) in &s.flagged {
        let what = if n == 1 {
            "1 reading with a quality flag".to_owned()
        } else {
            format!("{n} readings with quality flags")
        };
        let _ = write!(
            svg,
            r##"<circle class="flag" cx="{:.1}" cy="{:.1}" r="4" fill="none" stroke="#111" stroke-width="1.5"><title>{}</title></circle>"##,
            frame.x(t),
            frame.y(v),
            escape(&what)
        );
    }
}

/// The legend, top right.
fn legend(svg: &mut String, series: &[Series]) {
    let mut lx = WIDTH - RIGHT - 8.0;
    for s in series.iter().rev() {
        let label = escape(&s.label);
        let w = 12.0 + 7.0 * s.label.chars().count() as f64;
        lx -= w;
        let _ = write!(
            svg,
            r#"<rect x="{lx:.1}" y="{}" width="8" height="8" fill="{}"/><text x="{:.1}" y="{}" font-size="11" fill="{}">{label}</text>"#,
            TOP + 6.0,
            s.color,
            lx + 11.0,
            TOP + 14.0,
            s.color
        );
        lx -= 10.0;
    }
}

/// Splits time-ordered items where consecutive ones are more than `gap` seconds apart.
fn runs<T>(items: &[T], gap: i64, at: impl Fn(&T) -> i64) -> Vec<&[T]> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..items.len() {
        if at(&items[i]) - at(&items[i - 1]) > gap {
            out.push(&items[start..i]);
            start = i;
        }
    }
    if start < items.len() {
        out.push(&items[start..]);
    }
    out
}

/// A range that covers `[lo, hi]` in about five round steps.
fn nice_range(lo: f64, hi: f64) -> (f64, f64, f64) {
    let raw = (hi - lo) / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    ((lo / step).floor() * step, (hi / step).ceil() * step, step)
}

fn format_value(v: f64, step: f64) -> String {
    if step >= 1.0 {
        format!("{v:.0}")
    } else if step >= 0.1 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Escapes text for SVG/HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_draws_a_path_per_run_and_escapes_text() {
        let s = Series {
            label: "<b>temp</b>".into(),
            color: "#c33",
            points: vec![(0, 1.0), (60, 2.0), (120, 1.5), (1000, 3.0), (1060, 2.0)],
            band: vec![],
            flagged: vec![],
        };
        let svg = time_chart("T <script>", "°C", 0, 1200, 300, &[s]);
        assert_eq!(svg.matches(r#"class="line""#).count(), 2, "{svg}");
        assert!(svg.contains("M64.0 "), "{svg}");
        assert!(!svg.contains("<script>") && !svg.contains("<b>"), "{svg}");
        assert!(svg.contains("&lt;b&gt;temp"));
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(!svg.contains("style="), "the CSP forbids inline styles");
    }

    #[test]
    fn flagged_points_are_ringed_with_their_count() {
        let s = Series {
            label: "t".into(),
            color: "#c33",
            points: vec![(0, 1.0), (60, 9.0), (120, 1.0)],
            band: vec![],
            flagged: vec![(60, 9.0, 1), (120, 1.0, 3)],
        };
        let svg = time_chart("t", "°C", 0, 180, 300, &[s]);
        assert_eq!(svg.matches(r#"class="flag""#).count(), 2, "{svg}");
        assert!(
            svg.contains("<title>1 reading with a quality flag</title>"),
            "{svg}"
        );
        assert!(
            svg.contains("<title>3 readings with quality flags</title>"),
            "{svg}"
        );
    }

    #[test]
    fn an_empty_chart_says_so_and_a_flat_one_still_has_a_range() {
        assert!(time_chart("x", "", 0, 10, 5, &[]).contains("no data"));
        let flat = Series {
            label: "a".into(),
            color: "#000",
            points: vec![(0, 5.0), (5, 5.0)],
            band: vec![(0, 5.0, 5.0), (5, 5.0, 5.0)],
            flagged: vec![],
        };
        let svg = time_chart("x", "", 0, 10, 5, &[flat]);
        assert!(
            svg.contains(r#"class="band""#) && !svg.contains("NaN"),
            "{svg}"
        );
    }

    #[test]
    fn ranges_are_round() {
        assert_eq!(nice_range(0.3, 9.7), (0.0, 10.0, 2.0));
        assert_eq!(nice_range(1012.2, 1013.9), (1012.0, 1014.0, 0.5));
    }
}
