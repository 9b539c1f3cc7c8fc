//! Live notices inside one server process: interactions as ingest stores them and insights as
//! they are computed, fanned out to subscribers (GraphQL subscriptions).
//!
//! A bounded broadcast channel: publishing never blocks or fails, a subscriber that falls more
//! than [`CAPACITY`] notices behind is told how many it missed (and goes on), and a notice with
//! no subscriber costs nothing. Every notice carries its org; subscribers filter on it.

use std::sync::Arc;

use crow_core::model::{Insight, Interaction};
use crow_core::ports::Notifier;
use tokio::sync::broadcast;

/// How many notices a slow subscriber may lag behind before it misses some.
pub const CAPACITY: usize = 1024;

/// One notice.
#[derive(Debug, Clone)]
pub enum Live {
    /// An interaction was stored (by any ingest endpoint).
    InteractionCreated {
        /// The org.
        org_id: String,
        /// The interaction, as stored (scrubbed).
        interaction: Box<Interaction>,
    },
    /// An insight was computed.
    InsightGenerated(Insight),
}

impl Live {
    /// The org the notice belongs to.
    pub fn org_id(&self) -> &str {
        match self {
            Live::InteractionCreated { org_id, .. } => org_id,
            Live::InsightGenerated(i) => &i.org_id,
        }
    }
}

/// The process's notice bus.
#[derive(Debug)]
pub struct LiveBus {
    tx: broadcast::Sender<Arc<Live>>,
}

impl Default for LiveBus {
    fn default() -> Self {
        LiveBus {
            tx: broadcast::channel(CAPACITY).0,
        }
    }
}

impl LiveBus {
    /// A receiver of every notice published from now on (all orgs: filter with [`Live::org_id`]).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Live>> {
        self.tx.subscribe()
    }

    /// Whether anyone listens (so a publisher can skip work nobody would see).
    pub fn has_subscribers(&self) -> bool {
        self.tx.receiver_count() > 0
    }

    /// Publishes a notice (dropped when nobody listens).
    pub fn publish(&self, live: Live) {
        let _ = self.tx.send(Arc::new(live));
    }
}

impl Notifier for LiveBus {
    fn insight(&self, insight: &Insight) {
        if self.has_subscribers() {
            self.publish(Live::InsightGenerated(insight.clone()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn subscribers_get_notices_published_after_they_subscribe() {
        let bus = LiveBus::default();
        let insight = |org: &str| Insight {
            id: "ins_1".into(),
            org_id: org.into(),
            kind: "traffic".into(),
            period_start: 0,
            period_end: 1,
            data: serde_json::json!({}),
            created_at: 1,
        };
        bus.insight(&insight("org_a"));
        assert!(!bus.has_subscribers());
        let mut rx = bus.subscribe();
        bus.insight(&insight("org_b"));
        let got = rx.recv().await.unwrap();
        assert_eq!(got.org_id(), "org_b");
        assert!(rx.try_recv().is_err(), "the notice before subscribing is not replayed");
    }
}
