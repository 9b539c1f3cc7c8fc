//! LocalBlobStore: keys, atomic puts, sorted prefix listing.

use crow_core::ports::BlobStore;
use crow_store::{BlobStoreConfig, LocalBlobStore};

#[tokio::test]
async fn put_get_list_delete() {
    let dir = tempfile::tempdir().unwrap();
    let b = LocalBlobStore::new(&dir.path().join("blobs")).unwrap();
    assert_eq!(b.get("raw/a.json").await.unwrap(), None);
    assert!(b.list("").await.unwrap().is_empty());
    assert!(b.list("raw/").await.unwrap().is_empty());
    for key in [
        "raw/2024/b.json",
        "raw/2024/a.json",
        "raw/2023/z.json",
        "rawx",
        "exports/r.csv",
        "ü n+i=code",
    ] {
        b.put(key, key.as_bytes().to_vec()).await.unwrap();
    }
    assert_eq!(b.get("raw/2024/a.json").await.unwrap().unwrap(), b"raw/2024/a.json");
    b.put("raw/2024/a.json", b"v2".to_vec()).await.unwrap();
    assert_eq!(b.get("raw/2024/a.json").await.unwrap().unwrap(), b"v2");
    assert_eq!(b.get("ü n+i=code").await.unwrap().unwrap(), "ü n+i=code".as_bytes());
    assert_eq!(
        b.list("raw").await.unwrap(),
        ["raw/2023/z.json", "raw/2024/a.json", "raw/2024/b.json", "rawx"]
    );
    assert_eq!(
        b.list("raw/").await.unwrap(),
        ["raw/2023/z.json", "raw/2024/a.json", "raw/2024/b.json"]
    );
    assert_eq!(b.list("raw/2024/b").await.unwrap(), ["raw/2024/b.json"]);
    assert_eq!(b.list("").await.unwrap().len(), 6);
    assert!(b.list("nothing/here/").await.unwrap().is_empty());
    b.delete("raw/2024/a.json").await.unwrap();
    b.delete("raw/2024/a.json").await.unwrap(); // missing: fine
    assert_eq!(b.get("raw/2024/a.json").await.unwrap(), None);
    assert_eq!(b.list("raw/2024/").await.unwrap(), ["raw/2024/b.json"]);
}

#[tokio::test]
async fn bad_keys_are_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let b = BlobStoreConfig::Local {
        path: dir.path().to_owned(),
    }
    .build()
    .unwrap();
    for key in ["", "/etc/passwd", "../escape", "a/../../b", "a//b", "dir/", "x#1"] {
        let err = b.put(key, vec![1]).await.unwrap_err();
        assert!(matches!(err, crow_core::Error::Invalid { .. }), "{key:?}: {err}");
        assert!(b.get(key).await.is_err());
        assert!(b.delete(key).await.is_err());
    }
    assert!(b.list("/abs").await.is_err());
    assert!(b.list("../").await.is_err());
    // Nothing escaped the root.
    assert!(!dir.path().parent().unwrap().join("escape").exists());
}

#[tokio::test]
async fn concurrent_overwrites_are_never_torn() {
    let dir = tempfile::tempdir().unwrap();
    let b = std::sync::Arc::new(LocalBlobStore::new(dir.path()).unwrap());
    let big_a = vec![b'a'; 1 << 20];
    let big_b = vec![b'b'; 1 << 20];
    b.put("k", big_a.clone()).await.unwrap();
    let writer = {
        let b = b.clone();
        tokio::spawn(async move {
            for i in 0..20 {
                b.put("k", if i % 2 == 0 { big_b.clone() } else { big_a.clone() })
                    .await
                    .unwrap();
            }
        })
    };
    for _ in 0..50 {
        let got = b.get("k").await.unwrap().unwrap();
        assert_eq!(got.len(), 1 << 20);
        assert!(got.iter().all(|&c| c == got[0]), "torn read");
    }
    writer.await.unwrap();
    assert_eq!(b.list("").await.unwrap(), ["k"], "no staging files listed");
}
