//! Exports: a resource of an org written to the object store as CSV, NDJSON or Parquet by the
//! `export-report` workflow. The port is [`ExportStore`](crate::ports::ExportStore).

use serde::{Deserialize, Serialize};

use crate::model::{EventType, FrameEventKind, Millis};

/// What an export contains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "graphql", derive(async_graphql::Enum))]
#[serde(rename_all = "snake_case")]
pub enum ExportResource {
    /// Website and app interactions (newest first).
    Interactions,
    /// Sessions (newest first).
    Sessions,
    /// Social mentions (newest first).
    Mentions,
    /// The product catalog (by sku).
    Products,
    /// CCTV frame events (oldest first).
    FrameEvents,
}

impl ExportResource {
    /// Every resource.
    pub const ALL: [ExportResource; 5] = [
        ExportResource::Interactions,
        ExportResource::Sessions,
        ExportResource::Mentions,
        ExportResource::Products,
        ExportResource::FrameEvents,
    ];

    /// The wire name (`frame_events`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ExportResource::Interactions => "interactions",
            ExportResource::Sessions => "sessions",
            ExportResource::Mentions => "mentions",
            ExportResource::Products => "products",
            ExportResource::FrameEvents => "frame_events",
        }
    }

    /// Parses [`as_str`](Self::as_str).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// The file format of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "graphql", derive(async_graphql::Enum))]
#[serde(rename_all = "snake_case")]
pub enum ExportFormat {
    /// RFC 4180 CSV with a header row; nested values as JSON text.
    Csv,
    /// Newline-delimited JSON: one object per line.
    Json,
    /// Apache Parquet (one row group per 10 000 rows).
    Parquet,
}

impl ExportFormat {
    /// Every format.
    pub const ALL: [ExportFormat; 3] = [ExportFormat::Csv, ExportFormat::Json, ExportFormat::Parquet];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ExportFormat::Csv => "csv",
            ExportFormat::Json => "json",
            ExportFormat::Parquet => "parquet",
        }
    }

    /// Parses [`as_str`](Self::as_str).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == s)
    }

    /// The file extension (`csv`, `ndjson`, `parquet`).
    pub fn extension(self) -> &'static str {
        match self {
            ExportFormat::Csv => "csv",
            ExportFormat::Json => "ndjson",
            ExportFormat::Parquet => "parquet",
        }
    }

    /// The media type of the file.
    pub fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Csv => "text/csv; charset=utf-8",
            ExportFormat::Json => "application/x-ndjson",
            ExportFormat::Parquet => "application/vnd.apache.parquet",
        }
    }
}

/// Where an export stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "graphql", derive(async_graphql::Enum))]
#[serde(rename_all = "snake_case")]
pub enum ExportStatus {
    /// Waiting for the worker.
    Queued,
    /// Being written.
    Running,
    /// Written: the file can be downloaded.
    Succeeded,
    /// Gave up: `error` says why.
    Failed,
}

impl ExportStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ExportStatus::Queued => "queued",
            ExportStatus::Running => "running",
            ExportStatus::Succeeded => "succeeded",
            ExportStatus::Failed => "failed",
        }
    }

    /// Parses [`as_str`](Self::as_str).
    pub fn parse(s: &str) -> Option<Self> {
        [
            ExportStatus::Queued,
            ExportStatus::Running,
            ExportStatus::Succeeded,
            ExportStatus::Failed,
        ]
        .into_iter()
        .find(|f| f.as_str() == s)
    }
}

/// Which rows of the resource an export takes. `since`/`until` bound the resource's time
/// (interactions: `timestamp`; sessions: `started_at`; mentions: `posted_at`; frame events:
/// `timestamp`; products: `updated_at`); the other filters apply to the resources that have the
/// field and are refused for the others.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportFilters {
    /// At or after (milliseconds since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Millis>,
    /// Before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Millis>,
    /// Interactions of this type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_type: Option<EventType>,
    /// Interactions with this event name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Interactions of this session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// Interactions and sessions of this person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person_id: Option<String>,
    /// Mentions from this platform.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// Mentions from this configured source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Frame events of this camera.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub camera_id: Option<String>,
    /// Frame events of this kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<FrameEventKind>,
    /// Frame events of this zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// Products of this category.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// Products of this brand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brand: Option<String>,
}

impl ExportFilters {
    /// The filters that are set, by name, besides `since` and `until`.
    pub fn set_fields(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        let mut add = |name, set: bool| {
            if set {
                out.push(name);
            }
        };
        add("event_type", self.event_type.is_some());
        add("name", self.name.is_some());
        add("session_id", self.session_id.is_some());
        add("person_id", self.person_id.is_some());
        add("platform", self.platform.is_some());
        add("source", self.source.is_some());
        add("camera_id", self.camera_id.is_some());
        add("kind", self.kind.is_some());
        add("zone", self.zone.is_some());
        add("category", self.category.is_some());
        add("brand", self.brand.is_some());
        out
    }

    /// The filters (besides `since`/`until`) a resource takes.
    pub fn allowed(resource: ExportResource) -> &'static [&'static str] {
        match resource {
            ExportResource::Interactions => &["event_type", "name", "session_id", "person_id"],
            ExportResource::Sessions => &["person_id"],
            ExportResource::Mentions => &["platform", "source"],
            ExportResource::Products => &["category", "brand"],
            ExportResource::FrameEvents => &["camera_id", "kind", "zone"],
        }
    }
}

/// One export of an org.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Export {
    /// Export id (`exp_...`).
    pub id: String,
    /// Owning organization.
    pub org_id: String,
    /// What it contains.
    pub resource: ExportResource,
    /// The file format.
    pub format: ExportFormat,
    /// Which rows.
    #[serde(default)]
    pub filters: ExportFilters,
    /// Where it stands.
    pub status: ExportStatus,
    /// When it was requested.
    pub created_at: Millis,
    /// When the worker started writing it (the latest attempt).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Millis>,
    /// When it succeeded or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Millis>,
    /// Rows written (succeeded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    /// File size in bytes (succeeded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// Why it failed (failed), or the last transient error while it is retried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The object-store key of the file (succeeded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

impl Export {
    /// The object-store key an export's file is written to: `exports/{org}/{id}.{ext}`.
    pub fn object_key(org_id: &str, id: &str, format: ExportFormat) -> String {
        format!("exports/{org_id}/{id}.{}", format.extension())
    }
}
