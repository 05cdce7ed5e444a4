//! Go's time layouts (`2006-01-02T15:04:05Z07:00`): formatting for `timestamp`, and the widest
//! output of each element for max_len.

use chrono::{DateTime, Datelike as _, Timelike as _, Utc};

pub(super) type TimeFn = fn(&DateTime<Utc>) -> String;

/// The elements of Go's time layouts that names use, with the widest text each produces; the
/// others (`Jan`, `3`, `PM`...) print as text. Where two share a prefix the longer comes
/// first, as Go matches it; the time is UTC, so zones are constants.
const LAYOUT: &[(&str, TimeFn, usize)] = &[
    ("2006", |t| format!("{:04}", t.year()), 4),
    ("01", |t| format!("{:02}", t.month()), 2),
    ("02", |t| format!("{:02}", t.day()), 2),
    ("15", |t| format!("{:02}", t.hour()), 2),
    ("04", |t| format!("{:02}", t.minute()), 2),
    ("05", |t| format!("{:02}", t.second()), 2),
    ("06", |t| format!("{:02}", t.year().rem_euclid(100)), 2),
    ("002", |t| format!("{:03}", t.ordinal()), 3),
    ("MST", |_| "UTC".into(), 3),
    ("Z07:00", |_| "Z".into(), 1),
    ("Z0700", |_| "Z".into(), 1),
    ("-07:00", |_| "+00:00".into(), 6),
    ("-0700", |_| "+0000".into(), 5),
    (".000", |t| format!(".{:03}", t.nanosecond() / 1_000_000 % 1000), 4),
];

/// Walks a Go time layout: each element or literal character is given to `f` with its
/// formatter (None for literal text), its source text and its widest output.
pub(super) fn walk_layout(layout: &str, mut f: impl FnMut(Option<TimeFn>, &str, usize)) {
    let mut rest = layout;
    while let Some(c) = rest.chars().next() {
        let hit = LAYOUT.iter().find(|(tok, ..)| rest.starts_with(tok));
        let (used, fmt, width) = hit
            .map_or((c.len_utf8(), None, c.len_utf8()), |&(tok, fmt, width)| (tok.len(), Some(fmt), width));
        f(fmt, &rest[..used], width);
        rest = &rest[used..];
    }
}

/// Go's time.Format with a reference layout such as "2006-01-02T15:04:05Z07:00".
pub(super) fn go_time(layout: &str, t: &DateTime<Utc>) -> String {
    let mut out = String::new();
    walk_layout(layout, |fmt, text, _| out.push_str(&fmt.map_or_else(|| text.to_string(), |f| f(t))));
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use chrono::{TimeZone as _, Utc};

    use super::go_time;

    #[test]
    fn go_time_layout() {
        let at = Utc.with_ymd_and_hms(2024, 3, 5, 7, 8, 9).single().unwrap();
        let layout = "2006-01-02T15:04:05Z07:00 06 002 MST -0700 -07:00 Z0700 .000 x";
        assert_eq!(go_time(layout, &at), "2024-03-05T07:08:09Z 24 065 UTC +0000 +00:00 Z .000 x");
    }
}
