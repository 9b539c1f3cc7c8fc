//! # crow-ingest
//!
//! CROW's channels and workflows, written against crow-core's ports only, so the same code runs
//! in the native server and in the Cloudflare Worker.
#![warn(missing_docs)]

pub mod api;
pub mod catalog;
pub mod enrich;
pub mod http;
pub mod jobs;
pub mod workflows;
#[cfg(feature = "website")]
pub mod ingest;
#[cfg(feature = "website")]
pub mod website;
