//! GDPR: what the relational store holds about one person ([`PersonData`], for an export under
//! article 15) and what erasing them removed ([`Erasure`], article 17), as the
//! [`PersonStore`](crate::ports::PersonStore) port answers.
//!
//! A person is one id and every id identity stitching tied to it: asked by an anonymous id, a
//! previous id or a user id, the store resolves the root person
//! ([`EventStore::resolve_person`](crate::ports::EventStore::resolve_person)) and takes every
//! alias of that root along, so erasing by any one of them erases the whole stitched person.

use serde::{Deserialize, Serialize};

use crate::model::{Interaction, InteractionText, Millis, Session};

/// An identity link: `alias_id` (an anonymous or previous id) is the person `person_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IdentityLink {
    /// The anonymous or previous id.
    pub alias_id: String,
    /// The person it belongs to (the root of the stitched person).
    pub person_id: String,
    /// When the link was recorded (or last changed).
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub linked_at: Millis,
}

/// Everything the relational store holds about one person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PersonData {
    /// The person's id after identity stitching (the root every alias points at).
    pub person_id: String,
    /// Every id of the person: the root and its aliases, sorted.
    pub ids: Vec<String>,
    /// The identity links of those ids, by alias id.
    pub identities: Vec<IdentityLink>,
    /// Their interactions, with their text analyses, oldest first (by `timestamp`, then id).
    pub interactions: Vec<Interaction>,
    /// Their sessions, oldest first (by `started_at`, then id).
    pub sessions: Vec<Session>,
    /// The text analyses (and sentence embeddings) of their interactions, by event id: objects
    /// with `event_id`, `field`, `timestamp`, `analysis`, `embedding` and `analyzed_at`.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub texts: Vec<InteractionText>,
}

/// How many rows of each kind an erasure removed or changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErasureCounts {
    /// Interactions deleted.
    pub interactions: u64,
    /// Sessions deleted.
    pub sessions: u64,
    /// Identity links deleted.
    pub identities: u64,
    /// Text analyses (with their embeddings) deleted.
    pub texts: u64,
    /// Queued or dead-lettered jobs that named erased events: deleted when they named nothing
    /// else, otherwise rewritten without the erased ids.
    pub jobs: u64,
    /// Unfinished workflow runs whose step records named the person or their events: their step
    /// records are dropped (a resumed run redoes those steps, without the erased events).
    pub workflow_runs: u64,
}

/// What [`PersonStore::erase_person`](crate::ports::PersonStore::erase_person) removed, and
/// what the caller needs to erase the copies held elsewhere (vectors, raw-batch archives).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Erasure {
    /// The person's id after identity stitching.
    pub person_id: String,
    /// Every id of the person that was erased: the root and its aliases, sorted.
    pub ids: Vec<String>,
    /// Ids of the erased interactions, sorted.
    pub event_ids: Vec<String>,
    /// Counts.
    pub counts: ErasureCounts,
}

/// What [`scrub_job_payload`] makes of a job.
#[derive(Debug, Clone, PartialEq)]
pub enum JobScrub {
    /// The job names none of the erased events (or is another org's): leave it.
    Keep,
    /// The job names erased events among others: store this payload instead.
    Rewrite(serde_json::Value),
    /// The job named erased events only: delete it.
    Delete,
}

/// How an erasure treats a queued job of `org_id`: a payload `{"org_id": org_id, "event_ids":
/// [...], ...}` (an interaction batch, for `process-interaction` and `archive-batch`) loses the
/// erased ids, and a job left naming no event is deleted. Other payloads are kept.
///
/// ```
/// use std::collections::HashSet;
/// use crow_core::person::{JobScrub, scrub_job_payload};
/// use serde_json::json;
/// let erased: HashSet<&str> = ["e1"].into();
/// let p = json!({"org_id": "o", "event_ids": ["e1", "e2"]});
/// assert_eq!(scrub_job_payload(&p, "o", &erased), JobScrub::Rewrite(json!({"org_id": "o", "event_ids": ["e2"]})));
/// assert_eq!(scrub_job_payload(&json!({"org_id": "o", "event_ids": ["e1"]}), "o", &erased), JobScrub::Delete);
/// assert_eq!(scrub_job_payload(&p, "other", &erased), JobScrub::Keep);
/// ```
pub fn scrub_job_payload(
    payload: &serde_json::Value,
    org_id: &str,
    erased: &std::collections::HashSet<&str>,
) -> JobScrub {
    if payload.get("org_id").and_then(serde_json::Value::as_str) != Some(org_id) {
        return JobScrub::Keep;
    }
    let Some(ids) = payload.get("event_ids").and_then(serde_json::Value::as_array) else {
        return JobScrub::Keep;
    };
    let kept: Vec<serde_json::Value> = ids
        .iter()
        .filter(|v| !v.as_str().is_some_and(|id| erased.contains(id)))
        .cloned()
        .collect();
    if kept.len() == ids.len() {
        JobScrub::Keep
    } else if kept.is_empty() {
        JobScrub::Delete
    } else {
        let mut p = payload.clone();
        p["event_ids"] = serde_json::Value::Array(kept);
        JobScrub::Rewrite(p)
    }
}

/// Whether any string in a JSON value (at any depth, keys included) is one of `needles`: how an
/// erasure finds the workflow step records that name a person or their events.
///
/// ```
/// use std::collections::HashSet;
/// let needles: HashSet<&str> = ["anon-1"].into();
/// let v = serde_json::json!({"enrichment": [{"event_id": "e1", "person_id": "anon-1"}]});
/// assert!(crow_core::person::names_any(&v, &needles));
/// assert!(!crow_core::person::names_any(&serde_json::json!(3), &needles));
/// ```
pub fn names_any(value: &serde_json::Value, needles: &std::collections::HashSet<&str>) -> bool {
    match value {
        serde_json::Value::String(s) => needles.contains(s.as_str()),
        serde_json::Value::Array(a) => a.iter().any(|v| names_any(v, needles)),
        serde_json::Value::Object(m) => m
            .iter()
            .any(|(k, v)| needles.contains(k.as_str()) || names_any(v, needles)),
        _ => false,
    }
}
