//! PLACEHOLDER — being written (language, key phrases).

/// ISO 639-1 code of the text's language, when reliable.
pub fn detect_language(_text: &str) -> Option<String> {
    None
}

/// Key phrases, best first.
pub fn key_phrases(_text: &str, _k: usize) -> Vec<String> {
    Vec::new()
}
