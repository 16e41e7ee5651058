//! Time windows: what `--start`, `--end` and `--last` accept.
//!
//! Times are RFC 3339 (`2026-11-22T02:14:00Z`, offsets allowed) or Unix
//! milliseconds (`1763777640000`), as Kubeshark's tools take them.
//! `--last 15m` counts back from the newest packet of the archive, never
//! from the wall clock: an archive analysed next week gives the same cut.

use trawl_schemas::time::{parse_duration, parse_rfc3339, rfc3339};

use crate::Error;

/// A half-open window `[start, end)` in ns since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Window {
    pub start_ns: i64,
    pub end_ns: i64,
}

impl Window {
    pub fn contains(&self, ts: i64) -> bool {
        ts >= self.start_ns && ts < self.end_ns
    }

    /// True when `[first, last]` meets the window.
    pub fn overlaps(&self, first: i64, last: i64) -> bool {
        first < self.end_ns && last >= self.start_ns
    }

    pub fn everything() -> Window {
        Window { start_ns: i64::MIN, end_ns: i64::MAX }
    }

    /// Builds a window from optional `--start`, `--end` and `--last`;
    /// open ends take `bounds` (the data's first and last packet).
    pub fn from_args(
        start: Option<&str>,
        end: Option<&str>,
        last: Option<&str>,
        bounds: Option<(i64, i64)>,
    ) -> Result<Window, Error> {
        let (lo, hi) = bounds.map_or((i64::MIN, i64::MAX), |(a, b)| (a, b.saturating_add(1)));
        let w = match (start, end, last) {
            (Some(_), _, Some(_)) | (_, Some(_), Some(_)) => {
                return Err(Error::Usage("--last cannot be combined with --start or --end".into()));
            }
            (None, None, Some(d)) => {
                let len = parse_duration(d).filter(|n| *n > 0).ok_or_else(|| {
                    Error::Usage(format!("--last: expected a positive duration such as 15m, 1h or 90s, got `{d}`"))
                })?;
                Window { start_ns: hi.saturating_sub(len), end_ns: hi }
            }
            (s, e, None) => {
                let start_ns = s.map(|s| parse_time("--start", s)).transpose()?.unwrap_or(lo);
                let end_ns = e.map(|e| parse_time("--end", e)).transpose()?.unwrap_or(hi);
                Window { start_ns, end_ns }
            }
        };
        if w.end_ns <= w.start_ns {
            return Err(Error::Usage(format!(
                "the window is empty: --end ({}) is not after --start ({})",
                show(w.end_ns),
                show(w.start_ns)
            )));
        }
        Ok(w)
    }
}

/// RFC 3339 or Unix milliseconds to ns since the epoch.
pub fn parse_time(param: &str, s: &str) -> Result<i64, Error> {
    let t = s.trim();
    if !t.is_empty()
        && t.bytes().all(|b| b.is_ascii_digit())
        && let Some(ns) = t.parse::<i64>().ok().and_then(|ms| ms.checked_mul(1_000_000))
    {
        return Ok(ns);
    }
    parse_rfc3339(t).ok_or_else(|| {
        Error::Usage(format!(
            "{param}: expected an RFC 3339 time (2026-11-22T02:14:00Z) or Unix milliseconds, got `{s}`"
        ))
    })
}

/// A time for people: RFC 3339 UTC, or `-inf`/`+inf` for open ends.
pub fn show(ns: i64) -> String {
    match ns {
        i64::MIN => "-inf".into(),
        i64::MAX => "+inf".into(),
        n => rfc3339(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_in_both_forms() {
        assert_eq!(parse_time("--start", "1763777640000").ok(), Some(1_763_777_640_000_000_000));
        assert_eq!(parse_time("--start", "2025-11-22T02:14:00Z").ok(), Some(1_763_777_640_000_000_000));
        assert_eq!(parse_time("--start", "2025-11-22T03:14:00+01:00").ok(), Some(1_763_777_640_000_000_000));
        let e = parse_time("--end", "yesterday").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.starts_with("--end: expected an RFC 3339 time"), "{e}");
    }

    #[test]
    fn last_counts_back_from_the_newest_packet() {
        let w = Window::from_args(None, None, Some("15m"), Some((0, 3_600_000_000_000))).ok();
        assert_eq!(w, Some(Window { start_ns: 3_600_000_000_001 - 900_000_000_000, end_ns: 3_600_000_000_001 }));
        assert!(Window::from_args(Some("1000"), None, Some("5m"), None).is_err());
        assert!(Window::from_args(Some("2000"), Some("1000"), None, None).is_err());
        assert!(Window::from_args(None, None, Some("soon"), None).is_err());
    }
}
