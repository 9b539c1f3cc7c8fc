//! Agent tasks: what CROW's A2A agent (crow-ingest's `a2a` module) was asked to do and where
//! it stands. The port is [`TaskStore`](crate::ports::TaskStore).
//!
//! A task runs one skill (one of the REST API's tools) with its arguments. Its messages and
//! artifacts are stored as the agent's JSON (protocol neutral to this crate); the caller
//! scrubs them of PII before storing (the agent runs [`Scrubber::scrub_json`] on them).
//!
//! [`Scrubber::scrub_json`]: crate::privacy::Scrubber::scrub_json
//!
//! ```
//! use crow_core::agent::TaskState;
//!
//! assert_eq!(TaskState::parse("input_required"), Some(TaskState::InputRequired));
//! assert!(TaskState::Completed.is_terminal());
//! assert!(!TaskState::Working.is_terminal());
//! ```

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::Millis;

/// Where a task stands (the A2A task states).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// Received, not started.
    Submitted,
    /// Running (an export being written, say).
    Working,
    /// Waits for the client to send more.
    InputRequired,
    /// Done: the artifacts hold the result.
    Completed,
    /// Canceled by the client.
    Canceled,
    /// Ran and failed: the status message says why.
    Failed,
    /// Refused without running.
    Rejected,
    /// Waits for the client to authenticate.
    AuthRequired,
}

impl TaskState {
    /// Every state.
    pub const ALL: [TaskState; 8] = [
        TaskState::Submitted,
        TaskState::Working,
        TaskState::InputRequired,
        TaskState::Completed,
        TaskState::Canceled,
        TaskState::Failed,
        TaskState::Rejected,
        TaskState::AuthRequired,
    ];

    /// The stored name (`input_required`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Submitted => "submitted",
            TaskState::Working => "working",
            TaskState::InputRequired => "input_required",
            TaskState::Completed => "completed",
            TaskState::Canceled => "canceled",
            TaskState::Failed => "failed",
            TaskState::Rejected => "rejected",
            TaskState::AuthRequired => "auth_required",
        }
    }

    /// Parses [`as_str`](Self::as_str).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// Whether the task is finished for good (completed, canceled, failed or rejected): a
    /// finished task never changes again.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskState::Completed | TaskState::Canceled | TaskState::Failed | TaskState::Rejected
        )
    }
}

/// One task of an org.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentTask {
    /// Task id (a UUID).
    pub id: String,
    /// The conversation it belongs to (the client's `contextId`, or one the agent made up).
    pub context_id: String,
    /// Owning organization.
    pub org_id: String,
    /// Where it stands.
    pub state: TaskState,
    /// The skill it runs (a tool name).
    pub skill: String,
    /// The skill's arguments (a JSON object), scrubbed of PII.
    #[serde(default)]
    pub args: Value,
    /// Who asked: the principal's label (`key:sk_live_ab12`, `user:usr_...`).
    #[serde(default)]
    pub actor: String,
    /// The agent's message about the current state (why it failed, say), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_message: Option<Value>,
    /// The messages exchanged, oldest first.
    #[serde(default)]
    pub history: Vec<Value>,
    /// What the task produced.
    #[serde(default)]
    pub artifacts: Vec<Value>,
    /// When it was created.
    pub created_at: Millis,
    /// When its state last changed.
    pub updated_at: Millis,
}

/// Filters for [`TaskStore::list_tasks`](crate::ports::TaskStore::list_tasks) and
/// [`TaskStore::count_tasks`](crate::ports::TaskStore::count_tasks). Newest first (by
/// `created_at`, then id, both descending).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskQuery {
    /// Maximum number of items: 0 means 50, else clamped to 1..=1000 (`count_tasks` ignores it).
    pub limit: u32,
    /// Cursor from a previous page (`count_tasks` ignores it).
    pub cursor: Option<String>,
    /// Only this conversation.
    pub context_id: Option<String>,
    /// Only tasks in this state.
    pub state: Option<TaskState>,
    /// Only tasks whose state changed at or after this time (`updated_at`).
    pub updated_since: Option<Millis>,
}
