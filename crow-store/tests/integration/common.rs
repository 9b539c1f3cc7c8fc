//! Helpers shared by the integration tests.

use crow_core::model::{Context, EventType, Interaction, PageContext, Source};
use crow_store::{SqliteStore, StoreConfig};
use tempfile::TempDir;

/// A fresh store in a tempdir (keep the `TempDir` alive as long as the store).
pub fn store() -> (TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path(), StoreConfig::default()).unwrap();
    (dir, store)
}

/// A minimal event.
pub fn event(org: &str, id: &str, event_type: EventType, ts: i64) -> Interaction {
    Interaction {
        id: id.to_owned(),
        org_id: org.to_owned(),
        event_type,
        name: None,
        anonymous_id: None,
        user_id: None,
        session_id: None,
        group_id: None,
        previous_id: None,
        properties: Default::default(),
        traits: Default::default(),
        context: Context::default(),
        timestamp: ts,
        original_timestamp: None,
        sent_at: None,
        received_at: ts + 5,
        source: Source::Crow,
        is_bot: false,
        pii_scrubbed: 0,
        person_id: None,
        referrer_class: None,
        analysis: None,
    }
}

/// A page view of `path` by anonymous visitor `anon`.
pub fn page(org: &str, id: &str, anon: &str, path: &str, ts: i64) -> Interaction {
    let mut e = event(org, id, EventType::Page, ts);
    e.anonymous_id = Some(anon.to_owned());
    e.context.page = Some(PageContext {
        path: Some(path.to_owned()),
        ..Default::default()
    });
    e
}

/// A track event `name` by anonymous visitor `anon`.
pub fn track(org: &str, id: &str, anon: &str, name: &str, ts: i64) -> Interaction {
    let mut e = event(org, id, EventType::Track, ts);
    e.anonymous_id = Some(anon.to_owned());
    e.name = Some(name.to_owned());
    e
}

/// Runs each contract test against both backends.
macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(&crow_core::testing::MemoryStore::new()).await;
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let (_dir, store) = crate::common::store();
                    super::$name(&store).await;
                }
            )*
        }
    };
}
pub(crate) use contract;
