//! crow-store's integration tests: real SQLite files and real directories in tempdirs.

mod accounts;
mod blob;
mod catalog;
mod common;
mod events;
mod queue;
mod sessions;
mod social;
mod vectors;
mod video;
mod workflow;
