//! Timestamps: parsing and clock-skew correction.

use crate::model::Millis;

/// Corrects a client timestamp for the client's clock skew, as the Segment spec describes:
///
/// `timestamp = receivedAt - (sentAt - originalTimestamp)`
///
/// The difference between when the client says it sent the batch (`sent_at`, client clock)
/// and when the server received it (`received_at`, server clock) is the skew (plus network
/// latency, which is small). Without `sent_at` the client timestamp is taken as is; without a
/// client timestamp the event happened when it was received. A corrected time in the future
/// is clamped to `received_at`.
///
/// ```
/// use crow_core::time::corrected_timestamp;
/// // The client clock is 1 h fast: it says it sent at 13:00:10 and the event was at 13:00:00;
/// // the server received it at 12:00:10.
/// let h = 3_600_000;
/// assert_eq!(corrected_timestamp(Some(13 * h), Some(13 * h + 10_000), 12 * h + 10_000), 12 * h);
/// ```
pub fn corrected_timestamp(original: Option<Millis>, sent_at: Option<Millis>, received_at: Millis) -> Millis {
    let t = match (original, sent_at) {
        (Some(o), Some(s)) => received_at.saturating_sub(s.saturating_sub(o)),
        (Some(o), None) => o,
        (None, _) => received_at,
    };
    t.min(received_at)
}

/// Parses an RFC 3339 / ISO 8601 timestamp (`2024-05-01T12:00:00.123Z`, with or without
/// fraction, `Z` or an offset) or a number of milliseconds since the epoch given as a string.
/// Returns milliseconds since the epoch.
pub fn parse_timestamp(s: &str) -> Option<Millis> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().ok();
    }
    if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(dt.timestamp_millis());
    }
    // Accept a missing offset (treated as UTC) and a space instead of `T`.
    let normalized = s.replacen(' ', "T", 1);
    chrono::NaiveDateTime::parse_from_str(&normalized, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|n| n.and_utc().timestamp_millis())
}

/// Parses a JSON timestamp value: a string as [`parse_timestamp`], or a number of milliseconds
/// (a number below 10^11 is taken as seconds, since ms values that small are before 1973).
pub fn timestamp_from_json(v: &serde_json::Value) -> Option<Millis> {
    match v {
        serde_json::Value::String(s) => parse_timestamp(s),
        serde_json::Value::Number(n) => {
            let f = n.as_f64()?;
            if !f.is_finite() || f < 0.0 {
                return None;
            }
            Some(if f < 1e11 { (f * 1000.0) as Millis } else { f as Millis })
        }
        _ => None,
    }
}

/// Formats milliseconds as RFC 3339 with milliseconds and `Z`.
pub fn format_millis(ms: Millis) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_else(|| ms.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skew_is_corrected() {
        // client clock 5 minutes slow
        let recv = 1_700_000_000_000;
        let sent = recv - 300_000;
        let orig = sent - 1_000;
        assert_eq!(corrected_timestamp(Some(orig), Some(sent), recv), recv - 1_000);
    }

    #[test]
    fn future_is_clamped() {
        assert_eq!(corrected_timestamp(Some(2_000), None, 1_000), 1_000);
        assert_eq!(corrected_timestamp(None, Some(5), 1_000), 1_000);
    }

    #[test]
    fn parses_formats() {
        assert_eq!(parse_timestamp("1970-01-01T00:00:01Z"), Some(1000));
        assert_eq!(parse_timestamp("1970-01-01T00:00:01.5+00:00"), Some(1500));
        assert_eq!(parse_timestamp("1970-01-01T01:00:01+01:00"), Some(1000));
        assert_eq!(parse_timestamp("1970-01-01 00:00:02"), Some(2000));
        assert_eq!(parse_timestamp("1234"), Some(1234));
        assert_eq!(parse_timestamp("yesterday"), None);
        assert_eq!(
            timestamp_from_json(&serde_json::json!(1_700_000_000)),
            Some(1_700_000_000_000)
        );
        assert_eq!(
            timestamp_from_json(&serde_json::json!(1_700_000_000_123i64)),
            Some(1_700_000_000_123)
        );
        assert_eq!(format_millis(1500), "1970-01-01T00:00:01.500Z");
    }
}
