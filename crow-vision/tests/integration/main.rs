//! crow-vision's integration tests: one test binary, one module per area.
#![allow(missing_docs)]

mod detector;
mod faces;
mod pipeline;
mod sources;
