//! crow-ingest's integration tests: one test binary, one module per area.

mod cctv;
mod ingest;
mod workflows;
