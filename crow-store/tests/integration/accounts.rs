//! AccountStore: orgs, keys, authentication and its cache.

use crow_core::keys;
use crow_core::model::KeyKind;
use crow_core::ports::AccountStore;

use crate::common::store;

#[tokio::test]
async fn created_orgs_authenticate_with_both_keys() {
    let (_dir, s) = store();
    let creds = s.create_org("Acme", 1_000).await.unwrap();
    let other = s.create_org("Globex", 2_000).await.unwrap();
    assert_ne!(creds.org_id, other.org_id);

    let w = s.authenticate(&creds.write_key).await.unwrap().unwrap();
    assert_eq!((w.org_id.as_str(), w.kind), (creds.org_id.as_str(), KeyKind::Write));
    assert_eq!(w.pseudonym_key.len(), 32);
    let k = s.authenticate(&creds.api_key).await.unwrap().unwrap();
    assert_eq!((k.org_id.as_str(), k.kind), (creds.org_id.as_str(), KeyKind::Secret));
    assert_eq!(k.pseudonym_key, w.pseudonym_key);
    let o = s.authenticate(&other.api_key).await.unwrap().unwrap();
    assert_eq!(o.org_id, other.org_id);
    assert_ne!(o.pseudonym_key, k.pseudonym_key);

    // Wrong secret with a right prefix, before and after the prefix is cached.
    let prefix = keys::api_key_prefix(&creds.api_key).unwrap();
    let forged = format!("sk_{prefix}_{}", "0".repeat(40));
    assert_eq!(s.authenticate(&forged).await.unwrap(), None);
    assert_eq!(
        s.authenticate(&creds.api_key).await.unwrap().unwrap().org_id,
        creds.org_id
    );
    assert_eq!(s.authenticate(&forged).await.unwrap(), None);
    for junk in ["", "wk_", "sk_x_y", &format!("wk_{}", "0".repeat(32)), "Bearer xyz"] {
        assert_eq!(s.authenticate(junk).await.unwrap(), None, "{junk}");
    }

    let orgs = s.list_orgs().await.unwrap();
    assert_eq!(
        orgs.iter().map(|o| o.name.as_str()).collect::<Vec<_>>(),
        ["Acme", "Globex"]
    );
    let got = s.get_org(&creds.org_id).await.unwrap().unwrap();
    assert_eq!((got.name.as_str(), got.created_at), ("Acme", 1_000));
    assert_eq!(s.get_org("org_missing").await.unwrap(), None);
}

#[tokio::test]
async fn a_duplicate_org_id_is_a_conflict() {
    let (_dir, s) = store();
    let (org, _creds, new_keys) = keys::generate("A", 1, &[1u8; keys::RANDOM_BYTES]);
    AccountStore::create_org(&s, &org, &new_keys).await.unwrap();
    let err = AccountStore::create_org(&s, &org, &new_keys).await.unwrap_err();
    assert!(matches!(err, crow_core::Error::Conflict(_)), "{err}");
    // Same keys under another org id: the key conflicts, and nothing of the org is left behind.
    let mut org2 = org.clone();
    org2.id = "org_other".into();
    let err = AccountStore::create_org(&s, &org2, &new_keys).await.unwrap_err();
    assert!(matches!(err, crow_core::Error::Conflict(_)), "{err}");
    assert_eq!(s.get_org("org_other").await.unwrap(), None);
    assert_eq!(s.list_orgs().await.unwrap().len(), 1);
}

#[tokio::test]
async fn cached_grants_do_not_touch_sqlite_and_revocation_evicts_them() {
    let (_dir, s) = store();
    let creds = s.create_org("Acme", 1).await.unwrap();
    assert!(s.authenticate(&creds.write_key).await.unwrap().is_some());
    assert!(s.authenticate(&creds.api_key).await.unwrap().is_some());
    // Remove the keys behind the store's back: cached grants still answer.
    let conn = rusqlite::Connection::open(s.path()).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
    conn.execute("UPDATE api_keys SET revoked_at = 5", []).unwrap();
    assert!(s.authenticate(&creds.write_key).await.unwrap().is_some());
    assert!(s.authenticate(&creds.api_key).await.unwrap().is_some());
    conn.execute("UPDATE api_keys SET revoked_at = NULL", []).unwrap();
    drop(conn);

    assert!(s.revoke_key(&creds.write_key, 10).await.unwrap());
    assert!(!s.revoke_key(&creds.write_key, 11).await.unwrap());
    assert_eq!(s.authenticate(&creds.write_key).await.unwrap(), None);
    let prefix = keys::api_key_prefix(&creds.api_key).unwrap();
    assert!(s.revoke_key(prefix, 12).await.unwrap());
    assert_eq!(s.authenticate(&creds.api_key).await.unwrap(), None);
}
