//! Cron schedules for the social sources, in UTC, with a run missed while the process was
//! down made up once.
//!
//! # Expressions
//!
//! - **5 fields**, standard cron: `minute hour day-of-month month day-of-week`, e.g.
//!   `*/15 * * * *` (every 15 minutes) or `0 9 * * 1-5` (9:00 UTC on weekdays). The
//!   day of week is `0`–`7` (`0` and `7` are Sunday) or `sun`–`sat`. Restricting both the day
//!   of month and the day of week is refused: classic cron runs on days matching *either*,
//!   the underlying `cron` crate on days matching *both*; restrict one of them.
//! - **6 or 7 fields**, the `cron` crate's own syntax: a seconds field first and an optional
//!   year last (`0 */15 * * * *`); there the day of week is `1`–`7` for Sunday–Saturday, or
//!   names.
//! - **Shorthands**: `@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly`.
//!
//! A 5-field expression is run as the `cron` crate's 6-field one with `0` seconds, its day
//! of week rewritten as names (`1-5` → `MON,TUE,WED,THU,FRI`), since the two numberings
//! differ.
//!
//! # Missed runs
//!
//! [`due_at_start`] (and [`next_due`]) compare the last run with the schedule: a source is
//! due when a scheduled time fell after its last run and at or before now. If the process
//! was down for a day over an hourly schedule, that is one run at start, not 24; and a
//! source that never ran is due at once.
//!
//! # Example
//!
//! ```
//! use crow_ingest::social::schedule::{Schedule, due_at_start, next_due};
//!
//! const MIN: i64 = 60_000;
//! let every_15 = Schedule::parse("*/15 * * * *").unwrap();
//! let t0 = 1_700_000_100_000; // 2023-11-14 22:15:00 UTC
//! assert_eq!(every_15.next_after(t0), Some(t0 + 15 * MIN));
//! // Last ran at t0; at t0 + 10 min nothing is due, at t0 + 3 h one run is.
//! assert!(!due_at_start(&every_15, Some(t0), t0 + 10 * MIN));
//! assert!(due_at_start(&every_15, Some(t0), t0 + 180 * MIN));
//! assert!(due_at_start(&every_15, None, t0));
//!
//! let hourly = Schedule::parse("@hourly").unwrap();
//! let due = next_due(&[("a", &every_15, Some(t0)), ("b", &hourly, Some(t0))], t0 + MIN).unwrap();
//! assert_eq!((due.at, due.sources), (t0 + 15 * MIN, vec!["a"]));
//! ```

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use crow_core::model::Millis;

use super::SocialError;

/// A parsed cron schedule (see the module docs for the syntax).
#[derive(Clone)]
pub struct Schedule {
    expression: String,
    inner: cron::Schedule,
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Schedule").field(&self.expression).finish()
    }
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        self.expression == other.expression
    }
}

impl Schedule {
    /// Parses a 5-field, 6/7-field or shorthand expression. Errors with
    /// [`SocialError::Config`] saying what is wrong with it.
    pub fn parse(expression: &str) -> Result<Schedule, SocialError> {
        parse_schedule(expression).map_err(|e| SocialError::Config(format!("schedule: {e}")))
    }

    /// The expression as written.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The first scheduled time strictly after `ms` (UTC ms since the epoch), or `None` when
    /// there is none (a schedule limited to past years, or `ms` out of range).
    pub fn next_after(&self, ms: Millis) -> Option<Millis> {
        let secs = ms.div_euclid(1000);
        let after = DateTime::<Utc>::from_timestamp(secs, 0)?;
        self.inner.after(&after).next().map(|t| t.timestamp_millis())
    }

    /// True when a run is due now: see [`due_at_start`].
    pub fn is_due(&self, last_run_at: Option<Millis>, now: Millis) -> bool {
        due_at_start(self, last_run_at, now)
    }
}

/// Parses an expression; the error is a message without a field name.
pub(crate) fn parse_schedule(expression: &str) -> Result<Schedule, String> {
    let expr = expression.trim();
    let fields: Vec<&str> = expr.split_whitespace().collect();
    let cron_expr = if expr.starts_with('@') {
        expr.to_owned()
    } else {
        match fields.len() {
            5 => {
                if !is_any(fields[2]) && !is_any(fields[4]) {
                    return Err(format!(
                        "{expression:?} restricts both the day of month and the day of week; \
                         restrict only one (cron runs on either, this scheduler would need both)"
                    ));
                }
                let dow = day_of_week_names(fields[4])
                    .map_err(|e| format!("{expression:?}: day of week {:?}: {e}", fields[4]))?;
                format!("0 {} {} {} {} {dow}", fields[0], fields[1], fields[2], fields[3])
            }
            6 | 7 => expr.to_owned(),
            n => {
                return Err(format!(
                    "{expression:?} has {n} fields; expected 5 (minute hour day-of-month month \
                     day-of-week), 6 or 7 (seconds first, an optional year last), or a shorthand \
                     such as @hourly"
                ));
            }
        }
    };
    let inner = cron::Schedule::from_str(&cron_expr).map_err(|e| format!("{expression:?}: {e}"))?;
    let schedule = Schedule {
        expression: expression.to_owned(),
        inner,
    };
    if schedule.next_after(0).is_none() {
        return Err(format!("{expression:?} never fires"));
    }
    Ok(schedule)
}

fn is_any(field: &str) -> bool {
    field == "*" || field == "?"
}

const DAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// Rewrites a standard cron day-of-week field (`0`–`7`, `sun`–`sat`, lists, ranges, steps)
/// as a list of names for the `cron` crate, whose numbers mean other days.
fn day_of_week_names(field: &str) -> Result<String, String> {
    if is_any(field) {
        return Ok(field.to_owned());
    }
    let day = |s: &str| -> Result<u32, String> {
        if let Ok(n) = s.parse::<u32>() {
            return if n <= 7 {
                Ok(n % 7)
            } else {
                Err(format!("{n} is not a day (0-7)"))
            };
        }
        DAY_NAMES
            .iter()
            .position(|d| d.eq_ignore_ascii_case(s))
            .map(|p| p as u32)
            .ok_or_else(|| format!("{s:?} is not a day (0-7 or sun-sat)"))
    };
    let mut days = [false; 7];
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s.parse().map_err(|_| format!("bad step {s:?}"))?;
                if step == 0 {
                    return Err("a step must be at least 1".into());
                }
                (r, step)
            }
            None => (item, 1),
        };
        let (first, last) = if is_any(range) {
            (0, 6)
        } else if let Some((a, b)) = range.split_once('-') {
            // `7` ends a range as Sunday after Saturday: `5-7` is Fri, Sat, Sun.
            let first = day(a)?;
            let last = if b == "7" { 7 } else { day(b)? };
            if last < first {
                return Err(format!("range {range:?} runs backwards"));
            }
            (first, last)
        } else if step > 1 {
            // `1/2`: from Monday to the end of the week, every other day.
            (day(range)?, 6)
        } else {
            let d = day(range)?;
            (d, d)
        };
        let mut d = first;
        while d <= last {
            days[(d % 7) as usize] = true;
            d += step;
        }
    }
    if days.iter().all(|&d| d) {
        return Ok("*".into());
    }
    let names: Vec<&str> = (0..7).filter(|&d| days[d]).map(|d| DAY_NAMES[d]).collect();
    Ok(names.join(","))
}

/// True when `schedule` wants a run now: it never ran (`last_run_at` is `None`), or a
/// scheduled time fell after `last_run_at` and at or before `now`. However many times were
/// missed, this says "run once"; after the run, record its start as the new `last_run_at`.
pub fn due_at_start(schedule: &Schedule, last_run_at: Option<Millis>, now: Millis) -> bool {
    match last_run_at {
        None => true,
        Some(last) => schedule.next_after(last).is_some_and(|t| t <= now),
    }
}

/// When the next run is, and of which sources ([`next_due`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextDue<'a> {
    /// When (UTC ms): `now` when something is already due.
    pub at: Millis,
    /// The sources due then, in the order given.
    pub sources: Vec<&'a str>,
}

/// The runner's planner: given each source's `(name, schedule, last run)`, the earliest time
/// a run is due and the sources due then. A source that never ran, or missed a scheduled
/// time, is due at `now` (once). `None` when no schedule fires again.
///
/// The loop: sleep until `at`, run `sources` (recording each run's start as its last run),
/// ask again.
pub fn next_due<'a>(schedules: &[(&'a str, &Schedule, Option<Millis>)], now: Millis) -> Option<NextDue<'a>> {
    let mut best: Option<NextDue<'a>> = None;
    for &(name, schedule, last) in schedules {
        let at = match last {
            None => Some(now),
            Some(last) => schedule.next_after(last).map(|t| t.max(now)),
        };
        let Some(at) = at else { continue };
        match &mut best {
            Some(b) if at == b.at => b.sources.push(name),
            Some(b) if at > b.at => {}
            _ => {
                best = Some(NextDue {
                    at,
                    sources: vec![name],
                })
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Millis = 60_000;
    const HOUR: Millis = 60 * MIN;
    /// 2024-01-01 00:00:00 UTC, a Monday.
    const JAN1: Millis = 1_704_067_200_000;

    fn s(expr: &str) -> Schedule {
        Schedule::parse(expr).unwrap()
    }

    #[test]
    fn next_after_is_strict_and_utc() {
        let hourly = s("0 * * * *");
        assert_eq!(hourly.next_after(JAN1), Some(JAN1 + HOUR));
        assert_eq!(hourly.next_after(JAN1 - 1), Some(JAN1));
        assert_eq!(hourly.next_after(JAN1 + 500), Some(JAN1 + HOUR));
        assert_eq!(s("@hourly").next_after(JAN1), Some(JAN1 + HOUR));
        assert_eq!(s("30 9 * * *").next_after(JAN1), Some(JAN1 + 9 * HOUR + 30 * MIN));
        // Six fields: seconds first.
        assert_eq!(s("30 * * * * *").next_after(JAN1), Some(JAN1 + 30_000));
    }

    #[test]
    fn standard_days_of_week() {
        // JAN1 is a Monday: `1` is Monday in standard cron (Sunday in the cron crate).
        assert_eq!(s("0 9 * * 1").next_after(JAN1), Some(JAN1 + 9 * HOUR));
        assert_eq!(s("0 9 * * 0").next_after(JAN1), Some(JAN1 + 6 * 24 * HOUR + 9 * HOUR));
        assert_eq!(s("0 9 * * 7").next_after(JAN1), Some(JAN1 + 6 * 24 * HOUR + 9 * HOUR));
        assert_eq!(s("0 9 * * sat").next_after(JAN1), Some(JAN1 + 5 * 24 * HOUR + 9 * HOUR));
        // Weekdays; Friday to Sunday.
        let weekdays = s("0 9 * * 1-5");
        assert_eq!(
            weekdays.next_after(JAN1 + 4 * 24 * HOUR + 10 * HOUR),
            Some(JAN1 + 7 * 24 * HOUR + 9 * HOUR)
        );
        let weekend = s("0 9 * * 5-7");
        assert_eq!(weekend.next_after(JAN1), Some(JAN1 + 4 * 24 * HOUR + 9 * HOUR));
        assert_eq!(day_of_week_names("5-7").unwrap(), "SUN,FRI,SAT");
        assert_eq!(day_of_week_names("*/2").unwrap(), "SUN,TUE,THU,SAT");
        assert_eq!(day_of_week_names("1-5/2").unwrap(), "MON,WED,FRI");
        assert_eq!(day_of_week_names("mon,Wed").unwrap(), "MON,WED");
        assert_eq!(day_of_week_names("0-6").unwrap(), "*");
        assert_eq!(day_of_week_names("?").unwrap(), "?");
    }

    #[test]
    fn invalid_expressions() {
        let err = |e: &str| Schedule::parse(e).unwrap_err().to_string();
        assert!(err("* * *").contains("has 3 fields; expected 5"), "{}", err("* * *"));
        assert!(err("61 * * * *").contains("\"61 * * * *\""));
        assert!(err("0 9 1 * 1").contains("restricts both the day of month and the day of week"));
        assert!(err("0 9 * * 8").contains("8 is not a day"));
        assert!(err("0 9 * * 5-2").contains("runs backwards"));
        assert!(err("0 0 30 2 *").contains("never fires"));
        assert!(err("@often").contains("@often"));
        assert!(err("").contains("has 0 fields"));
    }

    #[test]
    fn several_missed_slots_make_one_run() {
        let every_15 = s("*/15 * * * *");
        let last = JAN1;
        let now = JAN1 + 5 * HOUR + 7 * MIN; // 20 slots missed
        assert!(due_at_start(&every_15, Some(last), now));
        let due = next_due(&[("a", &every_15, Some(last))], now).unwrap();
        assert_eq!(due.at, now);
        // After that one run (recorded at `now`), the next is the next slot, not a backlog.
        assert!(!due_at_start(&every_15, Some(now), now + MIN));
        let due = next_due(&[("a", &every_15, Some(now))], now + MIN).unwrap();
        assert_eq!(due.at, JAN1 + 5 * HOUR + 15 * MIN);
    }

    #[test]
    fn none_missed_waits_for_the_next_slot() {
        let hourly = s("0 * * * *");
        let last = JAN1 + 2 * HOUR; // ran on the hour
        assert!(!due_at_start(&hourly, Some(last), last + 59 * MIN));
        assert!(due_at_start(&hourly, Some(last), last + HOUR));
        let due = next_due(&[("a", &hourly, Some(last))], last + 10 * MIN).unwrap();
        assert_eq!(
            due,
            NextDue {
                at: JAN1 + 3 * HOUR,
                sources: vec!["a"]
            }
        );
    }

    #[test]
    fn never_ran_runs_now() {
        let daily = s("@daily");
        assert!(due_at_start(&daily, None, JAN1 + 5 * HOUR));
        let due = next_due(&[("a", &daily, None)], JAN1 + 5 * HOUR).unwrap();
        assert_eq!(due.at, JAN1 + 5 * HOUR);
    }

    #[test]
    fn planner_groups_sources_due_together() {
        let hourly = s("0 * * * *");
        let half = s("*/30 * * * *");
        let daily = s("@daily");
        let now = JAN1 + 10 * HOUR + 5 * MIN;
        let plan = [
            ("hourly", &hourly, Some(JAN1 + 10 * HOUR)),
            ("half", &half, Some(JAN1 + 10 * HOUR)),
            ("daily", &daily, Some(JAN1)),
        ];
        assert_eq!(
            next_due(&plan, now),
            Some(NextDue {
                at: JAN1 + 10 * HOUR + 30 * MIN,
                sources: vec!["half"]
            })
        );
        let plan = [
            ("hourly", &hourly, Some(JAN1 + 10 * HOUR)),
            ("half", &half, Some(JAN1 + 10 * HOUR + 30 * MIN)),
            ("new", &daily, None),
        ];
        assert_eq!(
            next_due(&plan, now),
            Some(NextDue {
                at: now,
                sources: vec!["new"]
            })
        );
        let plan = [
            ("hourly", &hourly, Some(JAN1 + 10 * HOUR)),
            ("half", &half, Some(JAN1 + 10 * HOUR + 30 * MIN)),
        ];
        assert_eq!(
            next_due(&plan, JAN1 + 10 * HOUR + 40 * MIN),
            Some(NextDue {
                at: JAN1 + 11 * HOUR,
                sources: vec!["hourly", "half"]
            })
        );
        assert_eq!(next_due(&[], now), None);
    }
}
