//! Key formats: org ids, public write keys, secret API keys and their hashes.
//!
//! crow-core does not draw random numbers itself (it must stay deterministic and wasm32-clean):
//! callers pass random bytes from their platform's CSPRNG.
//!
//! - org id: `org_` + 16 hex chars
//! - write key: `wk_` + 32 hex chars, public, stored as is
//! - API key: `sk_` + prefix (12 hex) + `_` + secret (40 hex); the prefix is stored in clear
//!   to look the key up, the whole key only as a SHA-256 hash.

use sha2::{Digest, Sha256};

use crate::model::{OrgCredentials, Organization};

/// Number of random bytes [`generate`] needs.
pub const RANDOM_BYTES: usize = 8 + 16 + 6 + 20 + 32;

/// What the account store keeps for a new org.
#[derive(Clone, PartialEq, Eq)]
pub struct NewOrgKeys {
    /// Public write key.
    pub write_key: String,
    /// Public prefix of the secret API key.
    pub api_key_prefix: String,
    /// SHA-256 of the whole secret API key, hex.
    pub api_key_hash: String,
    /// Per-org secret for keyed pseudonyms.
    pub pseudonym_key: Vec<u8>,
}

impl std::fmt::Debug for NewOrgKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewOrgKeys")
            .field("write_key", &self.write_key)
            .field("api_key_prefix", &self.api_key_prefix)
            .finish_non_exhaustive()
    }
}

/// Builds a new org, its credentials (to show once) and what to store, from random bytes.
pub fn generate(
    name: &str,
    created_at: i64,
    random: &[u8; RANDOM_BYTES],
) -> (Organization, OrgCredentials, NewOrgKeys) {
    let (org, rest) = random.split_at(8);
    let (wk, rest) = rest.split_at(16);
    let (prefix, rest) = rest.split_at(6);
    let (secret, pseudo) = rest.split_at(20);
    let org_id = format!("org_{}", hex::encode(org));
    let write_key = format!("wk_{}", hex::encode(wk));
    let api_key_prefix = hex::encode(prefix);
    let api_key = format!("sk_{api_key_prefix}_{}", hex::encode(secret));
    let keys = NewOrgKeys {
        write_key: write_key.clone(),
        api_key_prefix,
        api_key_hash: hash_secret(&api_key),
        pseudonym_key: pseudo.to_vec(),
    };
    let org = Organization {
        id: org_id.clone(),
        name: name.to_owned(),
        created_at,
    };
    (
        org,
        OrgCredentials {
            org_id,
            write_key,
            api_key,
        },
        keys,
    )
}

/// Random bytes [`new_key`] needs.
pub const KEY_RANDOM_BYTES: usize = 26;

/// A new key of an existing org from random bytes: the whole key (to show once), its public
/// lookup prefix and the hash to store. A write key is `wk_` + 32 hex (its prefix is the whole
/// key); a secret key is `sk_` + 12 hex + `_` + 40 hex.
pub fn new_key(kind: crate::model::KeyKind, random: &[u8; KEY_RANDOM_BYTES]) -> (String, String, String) {
    match kind {
        crate::model::KeyKind::Write => {
            let key = format!("wk_{}", hex::encode(&random[..16]));
            let hash = hash_secret(&key);
            (key.clone(), key, hash)
        }
        crate::model::KeyKind::Secret => {
            let prefix = hex::encode(&random[..6]);
            let key = format!("sk_{prefix}_{}", hex::encode(&random[6..]));
            let hash = hash_secret(&key);
            (key, prefix, hash)
        }
    }
}

/// A user id from 8 random bytes: `usr_` + 16 hex.
pub fn new_user_id(random: &[u8; 8]) -> String {
    format!("usr_{}", hex::encode(random))
}

/// SHA-256 of a secret key, hex. Secret keys carry 160 random bits, so a fast hash is enough.
pub fn hash_secret(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Splits a presented secret API key into its prefix, or `None` if it is not one.
pub fn api_key_prefix(presented: &str) -> Option<&str> {
    let rest = presented.strip_prefix("sk_")?;
    let (prefix, secret) = rest.split_once('_')?;
    (prefix.len() == 12 && !secret.is_empty()).then_some(prefix)
}

/// True when the string has the shape of a write key.
pub fn is_write_key(presented: &str) -> bool {
    presented.starts_with("wk_") && presented.len() == 35
}

/// Compares two byte strings in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_have_their_shapes() {
        let random = [7u8; RANDOM_BYTES];
        let (org, creds, keys) = generate("Acme", 5, &random);
        assert_eq!(org.id, creds.org_id);
        assert!(is_write_key(&creds.write_key), "{}", creds.write_key);
        assert_eq!(api_key_prefix(&creds.api_key), Some(keys.api_key_prefix.as_str()));
        assert_eq!(hash_secret(&creds.api_key), keys.api_key_hash);
        assert!(!keys.api_key_hash.contains(&creds.api_key));
        assert_eq!(keys.pseudonym_key.len(), 32);
        assert!(api_key_prefix("sk_short_x").is_none());
        assert!(constant_time_eq(b"abc", b"abc") && !constant_time_eq(b"abc", b"abd"));
    }

    #[test]
    fn new_keys_have_their_shapes() {
        use crate::model::KeyKind;
        let (key, prefix, hash) = new_key(KeyKind::Secret, &[9u8; KEY_RANDOM_BYTES]);
        assert_eq!(api_key_prefix(&key), Some(prefix.as_str()));
        assert_eq!(hash, hash_secret(&key));
        let (key, prefix, _) = new_key(KeyKind::Write, &[9u8; KEY_RANDOM_BYTES]);
        assert!(is_write_key(&key) && key == prefix);
        assert_eq!(new_user_id(&[1; 8]).len(), 20);
    }
}
