//! In-memory implementations of the ports, for tests and examples (feature `testing`).
