//! crow-ingest's integration tests: one test binary, one module per area.

mod a2a;
mod api;
mod catalog_exports;
mod cctv;
mod ingest;
mod support;
mod tools;
mod workflows;
