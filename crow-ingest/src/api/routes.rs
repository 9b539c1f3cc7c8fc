//! Every REST route in one table: method, path pattern, the permission it needs, the audit
//! action it records (mutations), and the operation that answers it.
//!
//! The router, the permission table test and the OpenAPI document's completeness test all read
//! this table, so a route cannot be added without a permission, or a mutation without an audit
//! action.

use crow_core::access::Permission;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A secret API key or a user session whose role allows the permission.
    Role(Permission),
    /// Anyone (the OpenAPI document).
    Public,
    /// A signed, expiring link (export downloads): the handler checks the token.
    SignedLink,
}

/// The operations, one per route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum Op {
    OpenApi,
    GetOrg,
    UpdateOrg,
    ListUsers,
    CreateUser,
    GetUser,
    UpdateUser,
    DeleteUser,
    ListApiKeys,
    CreateApiKey,
    GetApiKey,
    RevokeApiKey,
    ListAudit,
    ListProducts,
    CreateProduct,
    ImportProducts,
    GetProduct,
    UpdateProduct,
    DeleteProduct,
    ListCategories,
    CreateCategory,
    GetCategory,
    UpdateCategory,
    DeleteCategory,
    ListInteractions,
    GetInteraction,
    ListSessions,
    GetSession,
    ListMentions,
    GetMention,
    ListFrameEvents,
    TrafficInsights,
    FunnelInsights,
    SentimentInsights,
    EntityInsights,
    Search,
    Analyze,
    ListExports,
    CreateExport,
    GetExport,
    DownloadExport,
    ExportPerson,
    ErasePerson,
}

/// One route.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    /// `GET`, `POST`, `PATCH`, `DELETE` (`HEAD` is served by `GET` routes).
    pub method: &'static str,
    /// Path pattern; `{name}` matches one segment.
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
    /// The audit action a successful call records (every mutation has one).
    pub audit: Option<&'static str>,
    /// The operation.
    pub op: Op,
}

const fn r(method: &'static str, path: &'static str, access: Access, audit: Option<&'static str>, op: Op) -> Route {
    Route {
        method,
        path,
        access,
        audit,
        op,
    }
}

use Access::{Public, Role as R, SignedLink};
use Permission::*;

/// The REST API v1.
pub const ROUTES: &[Route] = &[
    r("GET", "/api/v1/openapi.json", Public, None, Op::OpenApi),
    r("GET", "/api/v1/organization", R(ReadOrg), None, Op::GetOrg),
    r(
        "PATCH",
        "/api/v1/organization",
        R(ManageOrg),
        Some("organization.update"),
        Op::UpdateOrg,
    ),
    r("GET", "/api/v1/users", R(ManageMembers), None, Op::ListUsers),
    r(
        "POST",
        "/api/v1/users",
        R(ManageMembers),
        Some("user.create"),
        Op::CreateUser,
    ),
    r("GET", "/api/v1/users/{id}", R(ManageMembers), None, Op::GetUser),
    r(
        "PATCH",
        "/api/v1/users/{id}",
        R(ManageMembers),
        Some("user.update"),
        Op::UpdateUser,
    ),
    r(
        "DELETE",
        "/api/v1/users/{id}",
        R(ManageMembers),
        Some("user.delete"),
        Op::DeleteUser,
    ),
    r("GET", "/api/v1/api-keys", R(ManageMembers), None, Op::ListApiKeys),
    r(
        "POST",
        "/api/v1/api-keys",
        R(ManageMembers),
        Some("api_key.create"),
        Op::CreateApiKey,
    ),
    r("GET", "/api/v1/api-keys/{id}", R(ManageMembers), None, Op::GetApiKey),
    r(
        "DELETE",
        "/api/v1/api-keys/{id}",
        R(ManageMembers),
        Some("api_key.revoke"),
        Op::RevokeApiKey,
    ),
    r("GET", "/api/v1/audit-log", R(ReadAudit), None, Op::ListAudit),
    r("GET", "/api/v1/products", R(ReadData), None, Op::ListProducts),
    r(
        "POST",
        "/api/v1/products",
        R(WriteCatalog),
        Some("product.create"),
        Op::CreateProduct,
    ),
    r(
        "POST",
        "/api/v1/products/import",
        R(WriteCatalog),
        Some("product.import"),
        Op::ImportProducts,
    ),
    r("GET", "/api/v1/products/{id}", R(ReadData), None, Op::GetProduct),
    r(
        "PATCH",
        "/api/v1/products/{id}",
        R(WriteCatalog),
        Some("product.update"),
        Op::UpdateProduct,
    ),
    r(
        "DELETE",
        "/api/v1/products/{id}",
        R(WriteCatalog),
        Some("product.delete"),
        Op::DeleteProduct,
    ),
    r("GET", "/api/v1/categories", R(ReadData), None, Op::ListCategories),
    r(
        "POST",
        "/api/v1/categories",
        R(WriteCatalog),
        Some("category.create"),
        Op::CreateCategory,
    ),
    r("GET", "/api/v1/categories/{id}", R(ReadData), None, Op::GetCategory),
    r(
        "PATCH",
        "/api/v1/categories/{id}",
        R(WriteCatalog),
        Some("category.update"),
        Op::UpdateCategory,
    ),
    r(
        "DELETE",
        "/api/v1/categories/{id}",
        R(WriteCatalog),
        Some("category.delete"),
        Op::DeleteCategory,
    ),
    r("GET", "/api/v1/interactions", R(ReadData), None, Op::ListInteractions),
    r(
        "GET",
        "/api/v1/interactions/{id}",
        R(ReadData),
        None,
        Op::GetInteraction,
    ),
    r("GET", "/api/v1/sessions", R(ReadData), None, Op::ListSessions),
    r("GET", "/api/v1/sessions/{id}", R(ReadData), None, Op::GetSession),
    r("GET", "/api/v1/mentions", R(ReadData), None, Op::ListMentions),
    r("GET", "/api/v1/mentions/{id}", R(ReadData), None, Op::GetMention),
    r("GET", "/api/v1/cctv/events", R(ReadData), None, Op::ListFrameEvents),
    r(
        "GET",
        "/api/v1/insights/traffic",
        R(ReadData),
        None,
        Op::TrafficInsights,
    ),
    r("GET", "/api/v1/insights/funnel", R(ReadData), None, Op::FunnelInsights),
    r(
        "GET",
        "/api/v1/insights/sentiment",
        R(ReadData),
        None,
        Op::SentimentInsights,
    ),
    r(
        "GET",
        "/api/v1/insights/entities",
        R(ReadData),
        None,
        Op::EntityInsights,
    ),
    r("GET", "/api/v1/search", R(ReadData), None, Op::Search),
    r("POST", "/api/v1/analyze", R(Analyze), None, Op::Analyze),
    r("GET", "/api/v1/exports", R(Export), None, Op::ListExports),
    r(
        "POST",
        "/api/v1/exports",
        R(Export),
        Some("export.create"),
        Op::CreateExport,
    ),
    r("GET", "/api/v1/exports/{id}", R(Export), None, Op::GetExport),
    r(
        "GET",
        "/api/v1/exports/{id}/download",
        SignedLink,
        None,
        Op::DownloadExport,
    ),
    r(
        "GET",
        "/api/v1/persons/{id}/export",
        R(ManagePersons),
        Some("person.export"),
        Op::ExportPerson,
    ),
    r(
        "DELETE",
        "/api/v1/persons/{id}",
        R(ManagePersons),
        Some("person.erase"),
        Op::ErasePerson,
    ),
];

/// What matching a request against [`ROUTES`] found.
#[derive(Debug)]
pub enum Matched {
    /// A route and its path parameters.
    Route(&'static Route, Vec<(&'static str, String)>),
    /// The path exists, but not for this method: the methods it has.
    WrongMethod(Vec<&'static str>),
    /// No such path.
    NotFound,
}

/// Matches a method and a (percent-encoded) path. `HEAD` matches `GET` routes; a trailing
/// slash is ignored; parameters are percent-decoded.
pub fn find(method: &str, path: &str) -> Matched {
    let path = if path.len() > 1 {
        path.trim_end_matches('/')
    } else {
        path
    };
    let method = if method.eq_ignore_ascii_case("HEAD") {
        "GET"
    } else {
        method
    };
    let mut allowed = Vec::new();
    for route in ROUTES {
        if let Some(params) = match_path(route.path, path) {
            if route.method.eq_ignore_ascii_case(method) {
                return Matched::Route(route, params);
            }
            allowed.push(route.method);
        }
    }
    if allowed.is_empty() {
        Matched::NotFound
    } else {
        if allowed.contains(&"GET") {
            allowed.push("HEAD");
        }
        Matched::WrongMethod(allowed)
    }
}

fn match_path(pattern: &'static str, path: &str) -> Option<Vec<(&'static str, String)>> {
    let mut params = Vec::new();
    let mut want = pattern.split('/');
    let mut got = path.split('/');
    loop {
        match (want.next(), got.next()) {
            (None, None) => return Some(params),
            (Some(w), Some(g)) => {
                if let Some(name) = w.strip_prefix('{').and_then(|w| w.strip_suffix('}')) {
                    if g.is_empty() {
                        return None;
                    }
                    params.push((name, percent_decode(g)));
                } else if w != g {
                    return None;
                }
            }
            _ => return None,
        }
    }
}

/// Decodes `%XX` escapes (not `+`: a path is not a form).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_match_with_parameters_and_methods() {
        let Matched::Route(r, p) = find("GET", "/api/v1/products/p%201/") else {
            panic!()
        };
        assert_eq!((r.op, p), (Op::GetProduct, vec![("id", "p 1".to_owned())]));
        let Matched::Route(r, _) = find("HEAD", "/api/v1/products") else {
            panic!()
        };
        assert_eq!(r.op, Op::ListProducts);
        let Matched::Route(r, _) = find("POST", "/api/v1/products/import") else {
            panic!()
        };
        assert_eq!(r.op, Op::ImportProducts);
        let Matched::WrongMethod(m) = find("PUT", "/api/v1/products/x") else {
            panic!()
        };
        assert_eq!(m, vec!["GET", "PATCH", "DELETE", "HEAD"]);
        assert!(matches!(find("GET", "/api/v1/nope"), Matched::NotFound));
        assert!(matches!(find("GET", "/api/v1/products//"), Matched::Route(..)));
        assert!(matches!(find("GET", "/api/v1/users/"), Matched::Route(r, _) if r.op == Op::ListUsers));
    }

    #[test]
    fn every_mutation_records_an_audit_action_and_routes_are_unique() {
        for route in ROUTES {
            // analysis answers from the texts sent and stores nothing
            if route.method != "GET" && route.op != Op::Analyze {
                assert!(
                    route.audit.is_some(),
                    "{} {} records no audit row",
                    route.method,
                    route.path
                );
            }
            let same = ROUTES
                .iter()
                .filter(|o| o.method == route.method && o.path == route.path)
                .count();
            assert_eq!(same, 1, "{} {} is listed twice", route.method, route.path);
        }
    }
}
