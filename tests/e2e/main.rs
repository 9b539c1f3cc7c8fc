//! End-to-end tests: the real `crow` binary serving over loopback HTTP, real SQLite, real
//! Segment and PostHog Python clients.
#![allow(clippy::unwrap_used, missing_docs)]

mod a2a;
mod bad_input;
mod cctv;
mod cctv_serve;
mod cli;
mod clients;
mod contract;
mod crash;
mod endpoints;
mod gdpr;
mod graphql;
mod mcp;
mod privacy;
mod rest;
mod sdk_http;
mod search;
mod social;
mod text;
