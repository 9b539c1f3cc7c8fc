//! Access control: roles, permissions and the one matrix between them; who a request acts as
//! ([`Principal`]); API keys, users and audit entries as the account store keeps them.
//!
//! The matrix is [`Role::allows`]: every route of the REST API names one [`Permission`], and
//! the router asks the matrix, so a rule lives in exactly one place (and one table test walks
//! every route through it).
//!
//! ```
//! use crow_core::access::{Permission, Role};
//!
//! assert!(Role::Analyst.allows(Permission::Export));
//! assert!(!Role::Viewer.allows(Permission::Export));
//! assert!(Role::Admin.can_grant(Role::Analyst) && !Role::Admin.can_grant(Role::Owner));
//! ```

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::{KeyKind, Millis};

/// A member's (or a secret key's) role in an org, from most to least powerful.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, including the org's settings and granting the owner role.
    Owner,
    /// Everything but the org's own settings: users, keys, catalog, erasure, the audit log.
    Admin,
    /// Reads all data, runs analyses and exports.
    Analyst,
    /// Reads data.
    Viewer,
}

impl Role {
    /// All roles, most powerful first.
    pub const ALL: [Role; 4] = [Role::Owner, Role::Admin, Role::Analyst, Role::Viewer];

    /// The role's name as the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Analyst => "analyst",
            Role::Viewer => "viewer",
        }
    }

    /// Parses a role name (`owner`, `admin`, `analyst`, `viewer`).
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// The permission matrix: whether this role may do what `p` names.
    pub fn allows(self, p: Permission) -> bool {
        use Permission::*;
        match self {
            Role::Owner => true,
            Role::Admin => !matches!(p, ManageOrg),
            Role::Analyst => matches!(p, ReadOrg | ReadData | Analyze | Export),
            Role::Viewer => matches!(p, ReadOrg | ReadData),
        }
    }

    /// Whether a member with this role may give `other` to a user or key: only roles at or
    /// below one's own (an admin cannot mint an owner).
    pub fn can_grant(self, other: Role) -> bool {
        self.allows(Permission::ManageMembers) && other >= self
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<Role> {
        Role::parse(s).ok_or_else(|| crate::Error::Invalid {
            field: "role".into(),
            reason: format!("unknown role {s:?}; expected owner, admin, analyst or viewer"),
        })
    }
}

/// What a route needs. Each REST route names exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// Read the org's own record.
    ReadOrg,
    /// Change the org's settings.
    ManageOrg,
    /// Read interactions, sessions, mentions, frame events, products, insights; search.
    ReadData,
    /// Run text analysis on submitted texts.
    Analyze,
    /// Create and download exports.
    Export,
    /// Create, change and delete products and categories.
    WriteCatalog,
    /// Manage users and API keys.
    ManageMembers,
    /// Read the audit log.
    ReadAudit,
    /// Export and erase what is held about a person (GDPR articles 15 and 17).
    ManagePersons,
}

impl Permission {
    /// Every permission.
    pub const ALL: [Permission; 9] = [
        Permission::ReadOrg,
        Permission::ManageOrg,
        Permission::ReadData,
        Permission::Analyze,
        Permission::Export,
        Permission::WriteCatalog,
        Permission::ManageMembers,
        Permission::ReadAudit,
        Permission::ManagePersons,
    ];
}

/// Who acts: an API key (by its public prefix), a signed-in user, or the system itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Actor {
    /// A secret API key, named by its public prefix.
    ApiKey {
        /// The key's public prefix.
        prefix: String,
    },
    /// A user with a session token.
    User {
        /// The user's id.
        id: String,
    },
    /// CROW itself (org creation, workflows).
    System,
}

impl Actor {
    /// `key:<prefix>`, `user:<id>` or `system`, as audit rows record it.
    pub fn label(&self) -> String {
        match self {
            Actor::ApiKey { prefix } => format!("key:{prefix}"),
            Actor::User { id } => format!("user:{id}"),
            Actor::System => "system".into(),
        }
    }
}

/// The authenticated caller of an API request.
#[derive(Clone, PartialEq, Eq)]
pub struct Principal {
    /// The org every query of the request is scoped to.
    pub org_id: String,
    /// The caller's role in that org.
    pub role: Role,
    /// Who the caller is.
    pub actor: Actor,
    /// The org's secret for keyed pseudonyms (so audit rows can name a person without their id).
    pub pseudonym_key: Vec<u8>,
}

impl std::fmt::Debug for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Principal")
            .field("org_id", &self.org_id)
            .field("role", &self.role)
            .field("actor", &self.actor)
            .finish_non_exhaustive()
    }
}

impl Principal {
    /// Whether the caller may do what `p` names.
    pub fn allows(&self, p: Permission) -> bool {
        self.role.allows(p)
    }
}

/// An API key as listed (never its secret, never its hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiKey {
    /// The lookup prefix: the whole key for a public write key, the 12-hex prefix of a secret key.
    pub prefix: String,
    /// `write` (ingest only) or `secret`.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "secret"))]
    pub kind: KeyKind,
    /// The role a secret key acts with (write keys only ingest).
    pub role: Role,
    /// A label given at creation.
    #[serde(default)]
    pub name: Option<String>,
    /// Creation time.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Millis,
    /// When it was revoked, if it was.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub revoked_at: Option<Millis>,
}

/// What the store keeps for a new API key: the secret only as its hash.
#[derive(Clone, PartialEq, Eq)]
pub struct NewApiKey {
    /// Public lookup prefix.
    pub prefix: String,
    /// SHA-256 of the whole key, hex.
    pub hash: String,
    /// `write` or `secret`.
    pub kind: KeyKind,
    /// Role of a secret key.
    pub role: Role,
    /// Label.
    pub name: Option<String>,
    /// Creation time.
    pub created_at: Millis,
}

impl std::fmt::Debug for NewApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewApiKey")
            .field("prefix", &self.prefix)
            .field("kind", &self.kind)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// A dashboard user of an org.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct User {
    /// User id (`usr_` + 16 hex).
    pub id: String,
    /// Email address (unique within the org).
    pub email: String,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Role in the org.
    pub role: Role,
    /// Creation time.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Millis,
}

/// One row of the append-only audit log: who did what, when, from where.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    /// Position in the log (increasing).
    pub seq: i64,
    /// When.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub at: Millis,
    /// Who: `key:<prefix>`, `user:<id>` or `system`.
    pub actor: String,
    /// What, as `resource.verb` (`product.create`, `api_key.revoke`, `person.erase`, ...).
    pub action: String,
    /// The id the action was about (a person appears only as a keyed pseudonym).
    #[serde(default)]
    pub target: Option<String>,
    /// The client address the request came from.
    #[serde(default)]
    pub ip: Option<String>,
    /// Request method and path, status, and action-specific counts.
    #[serde(default)]
    pub detail: Value,
}

/// A new audit row.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAuditEntry {
    /// The org.
    pub org_id: String,
    /// When.
    pub at: Millis,
    /// Who ([`Actor::label`]).
    pub actor: String,
    /// What.
    pub action: String,
    /// About which id.
    pub target: Option<String>,
    /// From where.
    pub ip: Option<String>,
    /// Details.
    pub detail: Value,
}

/// Filters for [`crate::ports::AccountStore::list_audit`]: newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Page size (1..=1000).
    pub limit: u32,
    /// Opaque cursor from the previous page.
    pub cursor: Option<String>,
    /// Only this action.
    pub action: Option<String>,
    /// Only this actor label.
    pub actor: Option<String>,
    /// From this time on.
    pub since: Option<Millis>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_matrix_is_monotone_in_the_role_order() {
        // a more powerful role allows everything a less powerful one does
        for p in Permission::ALL {
            for pair in Role::ALL.windows(2) {
                assert!(
                    !pair[1].allows(p) || pair[0].allows(p),
                    "{p:?}: {:?} vs {:?}",
                    pair[0],
                    pair[1]
                );
            }
        }
        assert!(Role::Owner.allows(Permission::ManageOrg) && !Role::Admin.allows(Permission::ManageOrg));
        assert!(Role::Admin.allows(Permission::ManagePersons) && !Role::Analyst.allows(Permission::ManagePersons));
        assert!(!Role::Viewer.allows(Permission::Analyze));
    }

    #[test]
    fn roles_grant_only_roles_at_or_below_their_own() {
        assert!(Role::Owner.can_grant(Role::Owner));
        assert!(Role::Admin.can_grant(Role::Admin) && !Role::Admin.can_grant(Role::Owner));
        assert!(!Role::Analyst.can_grant(Role::Viewer));
        assert_eq!("viewer".parse::<Role>().unwrap(), Role::Viewer);
        assert!("member".parse::<Role>().is_err());
    }
}
