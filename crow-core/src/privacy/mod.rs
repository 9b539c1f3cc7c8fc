//! Privacy rules: find and scrub PII in every string of an event. (Being written.)
