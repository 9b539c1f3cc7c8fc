//! crow-store's integration tests: real SQLite files and real directories in tempdirs.

mod accounts;
mod appended;
mod blob;
mod catalog;
mod catalog_exports;
mod common;
mod entities;
mod events;
mod persons;
mod queue;
mod sessions;
mod social;
mod tasks;
mod vectors;
mod video;
mod workflow;
