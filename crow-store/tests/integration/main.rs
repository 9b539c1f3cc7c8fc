//! crow-store's integration tests: real SQLite files and real directories in tempdirs.

mod accounts;
mod blob;
mod catalog;
mod catalog_exports;
mod common;
mod events;
mod persons;
mod queue;
mod sessions;
mod social;
mod vectors;
mod video;
mod workflow;
