//! # crow-ingest
//!
//! CROW's channels and workflows, written against crow-core's ports only, so the same code runs
//! in the native server and in the Cloudflare Worker.
#![warn(missing_docs)]

pub mod api;
pub mod catalog;
pub mod enrich;
pub mod http;
#[cfg(feature = "website")]
pub mod ingest;
pub mod jobs;
#[cfg(feature = "website")]
pub mod website;
pub mod workflows;
