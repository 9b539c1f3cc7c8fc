//! `crow.scrub`: PII scrubbing with the same detectors as ingest (`crow_core::privacy`).

use pyo3::prelude::*;

/// Replaces every PII value in `text` (e-mail addresses, phone numbers, payment cards, IBANs,
/// IP addresses, US SSNs) by a placeholder such as `[email]`, exactly as CROW scrubs events
/// before it stores them; text without PII comes back unchanged.
///
/// >>> crow.scrub("mail jane@example.com or call +1 (415) 555-2671")
/// 'mail [email] or call [phone]'
#[pyfunction]
fn scrub(py: Python<'_>, text: &str) -> String {
    py.detach(|| {
        crow_core::privacy::Scrubber::global()
            .scrub_text(text)
            .map_or_else(|| text.to_owned(), |(s, _)| s)
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(scrub, m)?)
}
