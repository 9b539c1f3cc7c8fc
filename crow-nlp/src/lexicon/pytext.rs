//! The few Python `str` and `float` semantics VADER's scores depend on, reproduced exactly:
//! `str.isspace`/`split()`/`strip()`, `str.strip(string.punctuation)`, `str.isupper()`,
//! `str.lower()` and `round(x, n)`.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Python's `str.isspace` for one character: general category `Zs` or bidirectional class `WS`,
/// `B` or `S`. That is Unicode's `White_Space` plus the four ASCII separators U+001C..U+001F.
pub(crate) fn is_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `text.strip()`.
pub(crate) fn strip(text: &str) -> &str {
    text.trim_matches(is_space)
}

/// Python's `text.split()`: runs of whitespace separate, no empty pieces.
pub(crate) fn split(text: &str) -> Split<'_> {
    Split { rest: text }
}

/// The iterator of [`split`]; ASCII is classified by byte, other characters decoded.
#[derive(Debug)]
pub(crate) struct Split<'a> {
    rest: &'a str,
}

impl<'a> Iterator for Split<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let s = self.rest;
        let mut i = 0;
        while i < s.len() {
            match char_at(s, i) {
                (true, len) => i += len,
                (false, _) => break,
            }
        }
        let start = i;
        while i < s.len() {
            match char_at(s, i) {
                (false, len) => i += len,
                (true, _) => break,
            }
        }
        self.rest = &s[i..];
        (i > start).then(|| &s[start..i])
    }
}

/// Whether the character starting at byte `i` of `s` is whitespace, and its length in bytes.
#[inline]
fn char_at(s: &str, i: usize) -> (bool, usize) {
    let b = s.as_bytes()[i];
    if b.is_ascii() {
        // \t \n \v \f \r, the separators U+001C..U+001F, and the space.
        return (matches!(b, b'\t'..=b'\r' | 0x1c..=0x20), 1);
    }
    match s[i..].chars().next() {
        Some(c) => (is_space(c), c.len_utf8()),
        None => (false, 1),
    }
}

/// VADER's `SentiText._strip_punc_if_word`: strips leading and trailing ASCII punctuation
/// (`string.punctuation`), unless two or fewer characters would be left (likely an emoticon such
/// as `:)`), in which case the token is kept whole.
pub(crate) fn strip_punc_if_word(token: &str) -> &str {
    let bytes = token.as_bytes();
    // ASCII bytes are character boundaries, so trimming them by byte keeps valid UTF-8 slices.
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_punctuation())
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_punctuation())
        .map_or(start, |e| e + 1);
    let stripped = &token[start..end];
    if stripped.chars().nth(2).is_none() {
        token
    } else {
        stripped
    }
}

/// Python's `str.isupper()`: at least one cased character, and no lowercase or titlecase one.
pub(crate) fn is_upper(s: &str) -> bool {
    if s.is_ascii() {
        let bytes = s.as_bytes();
        return bytes.iter().any(u8::is_ascii_uppercase) && !bytes.iter().any(u8::is_ascii_lowercase);
    }
    let mut cased = false;
    for c in s.chars() {
        if c.is_lowercase() || is_titlecase(c) {
            return false;
        }
        cased = cased || c.is_uppercase();
    }
    cased
}

/// General category `Lt` (titlecase letters): Python's `isupper` rejects them.
fn is_titlecase(c: char) -> bool {
    matches!(
        c,
        '\u{1c5}' | '\u{1c8}' | '\u{1cb}' | '\u{1f2}'
            | '\u{1f88}'..='\u{1f8f}'
            | '\u{1f98}'..='\u{1f9f}'
            | '\u{1fa8}'..='\u{1faf}'
            | '\u{1fbc}' | '\u{1fcc}' | '\u{1ffc}'
    )
}

/// Python's `str.lower()` (full case mapping, final sigma), borrowing when nothing changes.
pub(crate) fn lower(s: &str) -> Cow<'_, str> {
    if s.is_ascii() {
        if s.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(s.to_ascii_lowercase())
        } else {
            Cow::Borrowed(s)
        }
    } else {
        let lowered = s.to_lowercase();
        if lowered == s {
            Cow::Borrowed(s)
        } else {
            Cow::Owned(lowered)
        }
    }
}

/// Python's `round(x, digits)` for floats: the exact binary value rounded to `digits` decimals,
/// ties to even (Rust's `{:.N}` formatting rounds the same way), read back as the nearest float.
pub(crate) fn round(x: f64, digits: usize) -> f64 {
    if !x.is_finite() {
        return x;
    }
    // Fast path: when x·10^digits is clearly away from a tie, its rounding direction is that of
    // the exact value (the product's error is below 1e-12 here), and `r / 10^digits` is the
    // float nearest to the decimal `r·10^-digits`, which is what Python reads back.
    if digits <= 15 {
        let p = 10f64.powi(digits as i32);
        let scaled = x * p;
        if scaled.abs() < 1e9 {
            let floor = scaled.floor();
            let frac = scaled - floor;
            if (frac - 0.5).abs() > 1e-6 {
                let r = if frac > 0.5 { floor + 1.0 } else { floor };
                let y = r / p;
                return if y == 0.0 { 0.0f64.copysign(x) } else { y };
            }
        }
    }
    round_exact(x, digits)
}

/// [`round`] through the decimal expansion: exact for every float, including ties.
fn round_exact(x: f64, digits: usize) -> f64 {
    let mut buf = StackBuf::default();
    if write!(buf, "{x:.digits$}").is_err() {
        // Only for magnitudes far beyond VADER's [-1, 1]: fall back to an allocation.
        return format!("{x:.digits$}").parse().unwrap_or(x);
    }
    buf.as_str().parse().unwrap_or(x)
}

/// A small fixed buffer for [`round`], so scoring does not allocate to round.
#[derive(Default)]
struct StackBuf {
    bytes: [u8; 32],
    len: usize,
}

impl StackBuf {
    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or("")
    }
}

impl std::fmt::Write for StackBuf {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        if end > self.bytes.len() {
            return Err(std::fmt::Error);
        }
        self.bytes[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_matches_python() {
        // Python: all of these are str.isspace().
        for c in [
            '\t', '\n', '\u{b}', '\u{c}', '\r', ' ', '\u{1c}', '\u{1f}', '\u{85}', '\u{a0}', '\u{3000}',
        ] {
            assert!(is_space(c), "{c:?}");
        }
        for c in ['\u{200b}', '\u{180e}', 'a', '_'] {
            assert!(!is_space(c), "{c:?}");
        }
        assert_eq!(split(" a\u{a0}b\u{1c}c  ").collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_eq!(strip("\u{3000} x \n"), "x");
    }

    #[test]
    fn punctuation_stripping_keeps_short_tokens() {
        assert_eq!(strip_punc_if_word("great!!"), "great");
        assert_eq!(strip_punc_if_word("(wow)"), "wow");
        assert_eq!(strip_punc_if_word(":)"), ":)");
        assert_eq!(strip_punc_if_word("a."), "a.");
        assert_eq!(strip_punc_if_word("ok,"), "ok,");
        assert_eq!(strip_punc_if_word("don't"), "don't");
        assert_eq!(strip_punc_if_word("'été'"), "été");
        assert_eq!(strip_punc_if_word("'él'"), "'él'");
    }

    #[test]
    fn isupper_matches_python() {
        assert!(is_upper("GREAT"));
        assert!(is_upper("A1!"));
        assert!(is_upper("ÉTÉ"));
        assert!(!is_upper("Great"));
        assert!(!is_upper("123"));
        assert!(!is_upper(":)"));
        assert!(is_upper(":D")); // ':D'.isupper() is True in Python
        assert!(!is_upper("ǅ")); // titlecase
        assert!(!is_upper(""));
    }

    #[test]
    fn lower_matches_python() {
        assert_eq!(lower("GrEaT"), "great");
        assert!(matches!(lower("fine"), Cow::Borrowed(_)));
        assert_eq!(lower("ÉTÉ"), "été");
        assert_eq!(lower("ΟΔΟΣ"), "οδος"); // final sigma, as Python's 'ΟΔΟΣ'.lower()
    }

    #[test]
    fn round_is_half_even_on_the_exact_value() {
        // Python: round(0.0625, 3) == 0.062, round(0.1875, 3) == 0.188, round(2.675, 2) == 2.67,
        // round(0.5, 0) == 0.0, round(-0.00004, 4) == -0.0, round(0.12345, 4) == 0.1235 (binary > tie).
        assert_eq!(round(0.0625, 3), 0.062);
        assert_eq!(round(0.1875, 3), 0.188);
        assert_eq!(round(2.675, 2), 2.67);
        assert_eq!(round(0.5, 0), 0.0);
        assert_eq!(round(-0.00004, 4), 0.0);
        assert_eq!(round(0.12345, 4), 0.1235);
        assert_eq!(round(1.0 / 3.0, 3), 0.333);
        assert_eq!(round(1e300, 3), 1e300);
        assert_eq!(round(-0.00004, 4).to_bits(), (-0.0f64).to_bits());
    }

    #[test]
    fn round_fast_path_agrees_with_the_exact_one() {
        let mut x = 0.123_456_789f64;
        for k in 0..200_000u32 {
            // A deterministic walk over [-1, 1] plus the ratios VADER produces (a/b, small b).
            x = (x * 3.7 + 0.131).fract() * if k % 2 == 0 { 1.0 } else { -1.0 };
            let ratio = f64::from(k % 97) / f64::from(k % 89 + 1);
            for v in [x, ratio, ratio.fract()] {
                for digits in [3, 4] {
                    assert_eq!(
                        round(v, digits).to_bits(),
                        round_exact(v, digits).to_bits(),
                        "{v} {digits}"
                    );
                }
            }
        }
    }
}
