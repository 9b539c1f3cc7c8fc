//! # crow-core
//!
//! The bottom of CROW: the event model ([`model`]), the ports every backend implements
//! ([`ports`]), the privacy rules ([`privacy`]) and key formats ([`keys`]). No I/O, no async
//! runtime, no clock: it compiles to `wasm32-unknown-unknown`, so the native server and the
//! Cloudflare Worker call the same code.
//!
//! ```
//! use crow_core::time::corrected_timestamp;
//! use crow_core::model::EventType;
//!
//! assert_eq!(EventType::parse("p"), Some(EventType::Page));
//! // the client's clock is 2 s ahead: the event is moved back by 2 s
//! assert_eq!(corrected_timestamp(Some(10_000), Some(12_000), 10_000), 8_000);
//! ```
#![warn(missing_docs)]

pub mod access;
pub mod agent;
pub mod catalog;
pub mod error;
pub mod export;
pub mod keys;
pub mod model;
pub mod person;
pub mod ports;
pub mod privacy;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod time;
pub mod useragent;
pub mod vector;
pub mod video;

pub use error::{Error, Result};
