//! Who is calling: secret API keys, user session tokens (JWT), and signed download links.
//!
//! - `Authorization: Bearer sk_...`: a secret API key, looked up by its public prefix and
//!   checked against its stored hash; it acts with the role it was created with.
//! - `Authorization: Bearer <JWT>`: a user session. The token is checked by a
//!   [`SessionVerifier`]; [`JwtVerifier`] takes HS256 (a shared secret) or EdDSA (an Ed25519
//!   public key; feature `jwt`). Only the configured algorithm is accepted, so `alg: none` and algorithm
//!   confusion (an HS256 token "signed" with a public key) fail; `exp` is required and `nbf`
//!   enforced against the server's clock (with a small leeway). The user's role is read from the
//!   store on every call, so a demotion or removal takes effect at once. An OIDC login later
//!   plugs in as another [`SessionVerifier`] (a JWKS-backed one) without touching the router.
//! - `?token=` on `/api/v1/exports/{id}/download`: an HMAC-SHA256 link ([`sign_link`]) bound to
//!   the org, the export and an expiry.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::Api;
use super::problem::Problem;
use crate::http::{HttpRequest, HttpResponse};
use crow_core::access::{Actor, Principal};
use crow_core::keys;
use crow_core::model::{KeyKind, Millis};

/// How long a download link stays valid by default (15 minutes).
pub const LINK_TTL_MS: Millis = 15 * 60 * 1000;

/// What a session token says once verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionClaims {
    /// The org.
    pub org_id: String,
    /// The user id.
    pub user_id: String,
}

/// Checks a user session token. The router calls it for bearer tokens that are not API keys.
pub trait SessionVerifier: Send + Sync {
    /// The claims of a valid token at `now`, or why it is not valid (shown to the caller).
    fn verify(&self, token: &str, now: Millis) -> Result<SessionClaims, String>;
}

#[cfg(feature = "jwt")]
/// The claims CROW's session tokens carry.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct JwtClaims {
    /// The user id.
    pub sub: String,
    /// The org id.
    pub org: String,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Not before, seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Issued at, seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// Issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
}

#[cfg(feature = "jwt")]
/// Session tokens as JWTs: HS256 with a shared secret, or EdDSA with an Ed25519 key pair.
pub struct JwtVerifier {
    algorithm: jsonwebtoken::Algorithm,
    decoding: jsonwebtoken::DecodingKey,
    encoding: Option<jsonwebtoken::EncodingKey>,
    issuer: Option<String>,
    leeway_s: i64,
}

#[cfg(feature = "jwt")]
impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("algorithm", &self.algorithm)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "jwt")]
/// Why a JWT configuration cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("JWT configuration: {0}")]
pub struct JwtConfigError(String);

#[cfg(feature = "jwt")]
impl JwtVerifier {
    /// HS256 with a shared secret of at least 32 bytes (it can also issue tokens).
    pub fn hs256(secret: &[u8]) -> Result<Self, JwtConfigError> {
        if secret.len() < 32 {
            return Err(JwtConfigError(format!(
                "an HS256 secret needs at least 32 bytes (got {})",
                secret.len()
            )));
        }
        Ok(JwtVerifier {
            algorithm: jsonwebtoken::Algorithm::HS256,
            decoding: jsonwebtoken::DecodingKey::from_secret(secret).map_err(|e| JwtConfigError(e.to_string()))?,
            encoding: Some(jsonwebtoken::EncodingKey::from_secret(secret).map_err(|e| JwtConfigError(e.to_string()))?),
            issuer: None,
            leeway_s: 30,
        })
    }

    /// EdDSA (Ed25519) from a PEM public key, and optionally the PEM private key to issue tokens.
    pub fn eddsa(public_pem: &[u8], private_pem: Option<&[u8]>) -> Result<Self, JwtConfigError> {
        let decoding = jsonwebtoken::DecodingKey::from_ed_pem(public_pem)
            .map_err(|e| JwtConfigError(format!("public key: {e}")))?;
        let encoding = private_pem
            .map(|p| jsonwebtoken::EncodingKey::from_ed_pem(p).map_err(|e| JwtConfigError(format!("private key: {e}"))))
            .transpose()?;
        Ok(JwtVerifier {
            algorithm: jsonwebtoken::Algorithm::EdDSA,
            decoding,
            encoding,
            issuer: None,
            leeway_s: 30,
        })
    }

    /// Requires this `iss` claim (and stamps it on issued tokens).
    pub fn with_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// Signs a session token for a user of an org, valid from `now` for `ttl_s` seconds.
    pub fn issue(&self, org_id: &str, user_id: &str, now: Millis, ttl_s: i64) -> Result<String, JwtConfigError> {
        let key = self
            .encoding
            .as_ref()
            .ok_or_else(|| JwtConfigError("no private key to sign with".into()))?;
        let now_s = now.div_euclid(1000);
        let claims = JwtClaims {
            sub: user_id.to_owned(),
            org: org_id.to_owned(),
            exp: now_s + ttl_s,
            nbf: Some(now_s),
            iat: Some(now_s),
            iss: self.issuer.clone(),
        };
        jsonwebtoken::encode(&jsonwebtoken::Header::new(self.algorithm), &claims, key)
            .map_err(|e| JwtConfigError(e.to_string()))
    }
}

#[cfg(feature = "jwt")]
impl SessionVerifier for JwtVerifier {
    fn verify(&self, token: &str, now: Millis) -> Result<SessionClaims, String> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| format!("malformed session token: {e}"))?;
        if header.alg != self.algorithm {
            return Err(format!(
                "session tokens must be signed with {:?}; this one says {:?}",
                self.algorithm, header.alg
            ));
        }
        let mut v = jsonwebtoken::Validation::new(self.algorithm);
        // Times are checked below against the server's clock (the Worker has no SystemTime).
        v.validate_exp = false;
        v.validate_nbf = false;
        v.required_spec_claims = ["exp", "sub"].iter().map(|s| s.to_string()).collect();
        if let Some(iss) = &self.issuer {
            v.set_issuer(&[iss]);
        }
        v.validate_aud = false;
        let data = jsonwebtoken::decode::<JwtClaims>(token, &self.decoding, &v)
            .map_err(|e| format!("invalid session token: {e}"))?;
        let now_s = now.div_euclid(1000);
        let c = data.claims;
        if c.exp + self.leeway_s < now_s {
            return Err("the session token has expired; sign in again".into());
        }
        if let Some(nbf) = c.nbf
            && nbf - self.leeway_s > now_s
        {
            return Err("the session token is not valid yet (nbf is in the future)".into());
        }
        if c.sub.is_empty() || c.org.is_empty() {
            return Err("the session token names no user or org".into());
        }
        Ok(SessionClaims {
            org_id: c.org,
            user_id: c.sub,
        })
    }
}

/// Authentication settings of the API.
pub struct AuthConfig {
    sessions: Option<Box<dyn SessionVerifier>>,
    link_secret: Vec<u8>,
    /// How long download links stay valid.
    pub link_ttl_ms: Millis,
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("sessions", &self.sessions.is_some())
            .field("link_ttl_ms", &self.link_ttl_ms)
            .finish_non_exhaustive()
    }
}

impl AuthConfig {
    /// API keys only, with this installation's secret for signed links (at least 32 random bytes,
    /// kept across restarts so links outlive them).
    pub fn new(link_secret: Vec<u8>) -> Self {
        AuthConfig {
            sessions: None,
            link_secret,
            link_ttl_ms: LINK_TTL_MS,
        }
    }

    /// Also accepts user sessions checked by `verifier`.
    pub fn with_sessions(mut self, verifier: impl SessionVerifier + 'static) -> Self {
        self.sessions = Some(Box::new(verifier));
        self
    }
}

fn unauthorized(detail: impl Into<String>) -> HttpResponse {
    Problem::new(401, "unauthorized", "Unauthorized", detail)
        .response()
        .with_header("www-authenticate", "Bearer realm=\"crow\"")
}

/// The bearer credential of a request, if any.
pub fn bearer(req: &HttpRequest) -> Option<&str> {
    req.header("authorization")
        .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Resolves the caller: a secret API key or a user session. Answers `401` (with what to send)
/// for anything else, a public write key included.
pub async fn authenticate(api: &Api<'_>, req: &HttpRequest) -> Result<Principal, HttpResponse> {
    let token = bearer(req)
        .ok_or_else(|| unauthorized("send a secret API key or a session token as `Authorization: Bearer <token>`"))?;
    if token.len() > 4096 {
        return Err(unauthorized("the bearer token is too long"));
    }
    if keys::is_write_key(token) || keys::api_key_prefix(token).is_some() {
        return match api.store.authenticate(token).await.map_err(super::problem::backend)? {
            Some(grant) if grant.kind == KeyKind::Secret => Ok(Principal {
                org_id: grant.org_id,
                role: grant.role,
                actor: Actor::ApiKey { prefix: grant.prefix },
                pseudonym_key: grant.pseudonym_key,
            }),
            Some(_) => Err(unauthorized(
                "a public write key can only ingest events; the API needs a secret API key or a session token",
            )),
            None => Err(unauthorized("unknown or revoked API key")),
        };
    }
    if token.matches('.').count() != 2 {
        return Err(unauthorized(
            "the bearer token is neither an API key (sk_...) nor a session token (a JWT)",
        ));
    }
    let Some(verifier) = api.auth.sessions.as_deref() else {
        return Err(unauthorized(
            "user session tokens are not enabled on this server; use a secret API key",
        ));
    };
    let claims = verifier.verify(token, api.now).map_err(unauthorized)?;
    let store = api.store;
    let user = store
        .get_user(&claims.org_id, &claims.user_id)
        .await
        .map_err(super::problem::backend)?
        .ok_or_else(|| unauthorized("the session's user no longer exists"))?;
    let grant = store
        .org_grant(&claims.org_id)
        .await
        .map_err(super::problem::backend)?
        .ok_or_else(|| unauthorized("the session's organization no longer exists"))?;
    Ok(Principal {
        org_id: claims.org_id,
        role: user.role,
        actor: Actor::User { id: user.id },
        pseudonym_key: grant.pseudonym_key,
    })
}

/// The address a request came from, as the shell saw it.
pub fn client_ip(req: &HttpRequest) -> Option<String> {
    req.peer_ip.map(|ip| ip.to_string())
}

type HmacSha256 = Hmac<Sha256>;

fn link_mac(secret: &[u8], org_id: &str, export_id: &str, expires: Millis) -> String {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(format!("crow-export-link\n{org_id}\n{export_id}\n{expires}").as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// A download token for one export of an org, valid for [`AuthConfig::link_ttl_ms`]: returns the
/// token (for `?token=`) and when it expires.
pub fn sign_link(api: &Api<'_>, org_id: &str, export_id: &str) -> (String, Millis) {
    let expires = api.now + api.auth.link_ttl_ms;
    let mac = link_mac(&api.auth.link_secret, org_id, export_id, expires);
    (format!("{org_id}.{expires}.{mac}"), expires)
}

/// Checks the `token` query parameter of a download of `export_id`; returns the org it was
/// signed for. A missing, forged, expired or other export's token is a `403`.
pub fn check_link(api: &Api<'_>, req: &HttpRequest, export_id: &str) -> Result<String, HttpResponse> {
    let forbidden = |detail: &str| Problem::new(403, "invalid_link", "Invalid download link", detail).response();
    let token = req
        .query_param("token")
        .ok_or_else(|| forbidden("the link has no token; ask GET /api/v1/exports/{id} for a fresh download_url"))?;
    let mut parts = token.splitn(3, '.');
    let (Some(org), Some(expires), Some(mac)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(forbidden("the token is malformed"));
    };
    let expires: Millis = expires.parse().map_err(|_| forbidden("the token is malformed"))?;
    let want = link_mac(&api.auth.link_secret, org, export_id, expires);
    if !keys::constant_time_eq(want.as_bytes(), mac.as_bytes()) {
        return Err(forbidden("the token does not match this export"));
    }
    if expires < api.now {
        return Err(forbidden(
            "the link has expired; ask GET /api/v1/exports/{id} for a fresh download_url",
        ));
    }
    Ok(org.to_owned())
}

#[cfg(all(test, feature = "jwt"))]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn hs256_tokens_round_trip_and_times_are_enforced() {
        let v = JwtVerifier::hs256(SECRET).unwrap();
        let t = v.issue("org_a", "usr_1", 1_000_000, 60).unwrap();
        let c = v.verify(&t, 1_010_000).unwrap();
        assert_eq!((c.org_id.as_str(), c.user_id.as_str()), ("org_a", "usr_1"));
        assert!(v.verify(&t, 1_000_000 + 200_000).unwrap_err().contains("expired"));
        assert!(v.verify(&t, 1_000_000 - 100_000).unwrap_err().contains("not valid yet"));
        assert!(JwtVerifier::hs256(b"short").is_err());
    }

    #[test]
    fn alg_none_other_keys_and_algorithm_confusion_are_refused() {
        use base64::Engine;
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let v = JwtVerifier::hs256(SECRET).unwrap();
        let claims = r#"{"sub":"usr_1","org":"org_a","exp":99999999999}"#;
        let none = format!("{}.{}.", b64(r#"{"alg":"none","typ":"JWT"}"#), b64(claims));
        assert!(v.verify(&none, 0).is_err());
        let other = JwtVerifier::hs256(b"another-secret-another-secret-xx").unwrap();
        let t = other.issue("org_a", "usr_1", 0, 60).unwrap();
        assert!(v.verify(&t, 0).unwrap_err().contains("invalid"));
        // an RS256/EdDSA header on a token checked as HS256 is refused before any key is used
        let ed = format!("{}.{}.sig", b64(r#"{"alg":"EdDSA","typ":"JWT"}"#), b64(claims));
        assert!(v.verify(&ed, 0).unwrap_err().contains("HS256"));
        let hs = format!("{}.{}.sig", b64(r#"{"alg":"HS256","typ":"JWT"}"#), b64(claims));
        let pem = b"-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n";
        let ed_verifier = JwtVerifier::eddsa(pem, None).unwrap();
        assert!(ed_verifier.verify(&hs, 0).unwrap_err().contains("EdDSA"));
    }
}
