//! `EventStore::top_entities`: one contract, run against `MemoryStore` (the reference) and
//! `SqliteStore` — entities of interaction texts and of analyzed social mentions, never personal
//! data, never another org's.

use crow_core::Error;
use crow_core::model::{InteractionText, Millis, Product};
use crow_core::ports::{
    CatalogStore, Entity, EntityCount, EntityQuery, EventStore, SentimentSource, SocialStore, TextAnalysis,
};
use crow_core::testing::sample_mention;
use serde_json::{Value, json};

const ORG: &str = "org_a";
const OTHER: &str = "org_b";

fn entity(kind: &str, text: &str, product_id: Option<&str>) -> Entity {
    Entity {
        kind: kind.into(),
        text: text.into(),
        start: 0,
        end: text.len(),
        product_id: product_id.map(Into::into),
        pii: false,
    }
}

fn pii(kind: &str, text: &str) -> Entity {
    Entity {
        pii: true,
        ..entity(kind, text, None)
    }
}

/// An analyzed interaction text; `sentiment` is `(label, score)`.
fn text(id: &str, timestamp: Millis, sentiment: Option<(&str, f32)>, entities: Vec<Entity>) -> InteractionText {
    InteractionText {
        event_id: id.into(),
        field: "feedback".into(),
        timestamp,
        analysis: TextAnalysis {
            language: Some("en".into()),
            sentiment: sentiment.map(|(label, score)| crow_core::ports::Sentiment {
                label: label.into(),
                score,
                tier: "lexicon".into(),
            }),
            entities,
            key_phrases: Vec::new(),
        },
        embedding: None,
        analyzed_at: timestamp + 1,
    }
}

fn product(org: &str, id: &str, name: &str) -> Product {
    Product {
        id: id.into(),
        org_id: org.into(),
        sku: format!("sku-{id}"),
        name: name.into(),
        brand: None,
        category: None,
        price_cents: None,
        currency: None,
        url: None,
        description: None,
        updated_at: 1,
    }
}

fn count(
    kind: &str,
    text: &str,
    product_id: Option<&str>,
    mentions: u64,
    pnn: [u64; 3],
    mean: Option<f64>,
) -> EntityCount {
    EntityCount {
        kind: kind.into(),
        text: text.into(),
        product_id: product_id.map(Into::into),
        mentions,
        positive: pnn[0],
        neutral: pnn[1],
        negative: pnn[2],
        mean_score: mean,
    }
}

fn query(source: SentimentSource, kind: Option<&str>, since: Millis, until: Millis, limit: u32) -> EntityQuery {
    EntityQuery {
        source,
        kind: kind.map(Into::into),
        since,
        until,
        limit,
    }
}

fn texts_of(got: &[EntityCount]) -> Vec<(&str, &str)> {
    got.iter().map(|c| (c.kind.as_str(), c.text.as_str())).collect()
}

/// The texts of `ORG` in `[1000, 2000)` and around it, and one text of `OTHER`.
async fn seed_texts<S: EventStore + CatalogStore>(s: &S) {
    s.upsert_products(ORG, &[product(ORG, "p-1", "Acme Phone X")])
        .await
        .unwrap();
    // the other org names its product alike: never this org's name
    s.upsert_products(OTHER, &[product(OTHER, "p-gone", "Not Ours")])
        .await
        .unwrap();
    let texts = [
        text(
            "e0",
            999,
            Some(("positive", 0.5)),
            vec![entity("competitor", "Initech", None)],
        ),
        text(
            "e1",
            1_000,
            Some(("positive", 0.5)),
            vec![
                entity("product", "acme phone x", Some("p-1")),
                entity("brand", "Acme", None),
                entity("brand", "acme", None),
                pii("email", ""),
                pii("person", "Ana Lima"),
            ],
        ),
        text(
            "e2",
            1_500,
            Some(("negative", -0.75)),
            vec![
                entity("product", "ACME PHONE X", Some("p-1")),
                entity("brand", "ACME", None),
                entity("competitor", "Globex", None),
                entity("product", "Widget", Some("p-gone")),
            ],
        ),
        text(
            "e3",
            1_999,
            None,
            vec![
                entity("brand", "Acme", None),
                entity("money", "$20", None),
                entity("brand", "Globex", None),
                entity("product", "Widget", None),
                pii("phone", "+351 912 345 678"),
            ],
        ),
        text(
            "e4",
            2_000,
            Some(("neutral", 0.0)),
            vec![entity("brand", "Acme", None), entity("competitor", "Globex", None)],
        ),
    ];
    s.store_texts(ORG, &texts).await.unwrap();
    let other = text(
        "e1",
        1_500,
        Some(("positive", 1.0)),
        vec![entity("brand", "Acme", None), entity("competitor", "Umbrella", None)],
    );
    s.store_texts(OTHER, &[other]).await.unwrap();
}

async fn counts_interaction_entities_by_texts<S: EventStore + CatalogStore>(s: &S) {
    seed_texts(s).await;
    let got = s
        .top_entities(ORG, &query(SentimentSource::Interactions, None, 1_000, 2_000, 100))
        .await
        .unwrap();
    assert_eq!(
        got,
        [
            // three texts; "Acme" is the form most texts use; e3 has no sentiment
            count("brand", "Acme", None, 3, [1, 0, 1], Some(-0.125)),
            // linked to a catalog product: named by the catalog
            count("product", "Acme Phone X", Some("p-1"), 2, [1, 0, 1], Some(-0.125)),
            // one text each: by text, then kind, then no product before a product
            count("money", "$20", None, 1, [0, 0, 0], None),
            count("brand", "Globex", None, 1, [0, 0, 0], None),
            count("competitor", "Globex", None, 1, [0, 0, 1], Some(-0.75)),
            count("product", "Widget", None, 1, [0, 0, 0], None),
            // linked to a product the catalog does not hold: named by its form
            count("product", "Widget", Some("p-gone"), 1, [0, 0, 1], Some(-0.75)),
        ]
    );
    // personal data is never counted, whatever it holds
    let all = serde_json::to_string(&got).unwrap();
    assert!(!all.contains("Ana") && !all.contains("+351"), "{all}");
    for kind in ["email", "person", "phone"] {
        let q = query(SentimentSource::Interactions, Some(kind), 0, 10_000, 100);
        assert_eq!(s.top_entities(ORG, &q).await.unwrap(), [], "{kind}");
    }
    // the limit keeps the first ones
    let q = query(SentimentSource::Interactions, None, 1_000, 2_000, 2);
    assert_eq!(s.top_entities(ORG, &q).await.unwrap(), got[..2]);
}

async fn filters_by_kind_and_window<S: EventStore + CatalogStore>(s: &S) {
    seed_texts(s).await;
    let top = |kind: Option<&'static str>, since: Millis, until: Millis| async move {
        s.top_entities(ORG, &query(SentimentSource::Interactions, kind, since, until, 100))
            .await
            .unwrap()
    };
    let brands = top(Some("brand"), 1_000, 2_000).await;
    assert_eq!(texts_of(&brands), [("brand", "Acme"), ("brand", "Globex")]);
    let competitors = top(Some("competitor"), 0, 10_000).await;
    assert_eq!(
        competitors,
        [
            count("competitor", "Globex", None, 2, [0, 1, 1], Some(-0.375)),
            count("competitor", "Initech", None, 1, [1, 0, 0], Some(0.5)),
        ]
    );
    assert_eq!(top(Some("Brand"), 0, 10_000).await, [], "kinds compare exactly");
    // since is inclusive, until exclusive
    assert_eq!(
        texts_of(&top(None, 2_000, 2_001).await),
        [("brand", "Acme"), ("competitor", "Globex")]
    );
    assert_eq!(texts_of(&top(None, 999, 1_000).await), [("competitor", "Initech")]);
    assert_eq!(top(None, 2_001, 9_000).await, []);
    assert_eq!(top(None, 1_500, 1_500).await, [], "an empty window");
    assert_eq!(top(None, 1_600, 1_500).await, [], "a reversed window");
}

async fn orgs_are_isolated<S: EventStore + CatalogStore>(s: &S) {
    seed_texts(s).await;
    let q = query(SentimentSource::Interactions, None, 0, 10_000, 100);
    let mine = serde_json::to_string(&s.top_entities(ORG, &q).await.unwrap()).unwrap();
    assert!(!mine.contains("Umbrella") && !mine.contains("Not Ours"), "{mine}");
    assert_eq!(
        s.top_entities(OTHER, &q).await.unwrap(),
        [
            count("brand", "Acme", None, 1, [1, 0, 0], Some(1.0)),
            count("competitor", "Umbrella", None, 1, [1, 0, 0], Some(1.0)),
        ]
    );
    assert_eq!(s.top_entities("org_nobody", &q).await.unwrap(), []);
}

async fn limits_outside_1_to_100_are_invalid<S: EventStore>(s: &S) {
    for limit in [0, 101, u32::MAX] {
        let q = query(SentimentSource::Interactions, None, 0, 10, limit);
        let err = s.top_entities(ORG, &q).await.unwrap_err();
        assert!(
            matches!(&err, Error::Invalid { field, .. } if field == "limit"),
            "{limit}: {err:?}"
        );
    }
    let q = query(SentimentSource::Mentions, None, 0, 10, 100);
    assert_eq!(s.top_entities(ORG, &q).await.unwrap(), []);
}

fn analyzed(
    org: &str,
    n: u32,
    posted_at: Millis,
    sentiment: Option<f32>,
    analysis: Option<Value>,
) -> crow_core::model::SocialMention {
    let mut m = sample_mention(org, "bluesky", n, posted_at);
    m.sentiment = sentiment;
    m.analysis = analysis;
    m
}

async fn counts_mention_entities<S: EventStore + SocialStore>(s: &S) {
    let e = |kind: &str, text: &str| json!({"kind": kind, "text": text, "start": 0, "end": text.len()});
    let mentions = [
        // analyzed: positive by the model's score
        analyzed(
            ORG,
            1,
            1_000,
            Some(0.5),
            Some(json!({"language": "en", "entities": [
                e("brand", "Acme"),
                {"kind": "email", "text": "", "start": 0, "end": 5, "pii": true},
                {"kind": "person", "text": "Ana Lima", "start": 0, "end": 8, "pii": true},
            ]})),
        ),
        // no model score: the lexicon's 0.25 is positive; malformed entries are skipped
        analyzed(
            ORG,
            2,
            1_500,
            None,
            Some(json!({"entities": [
                e("brand", "acme"),
                {"kind": "competitor", "text": "Globex", "product_id": 7, "pii": false},
                {"kind": 3, "text": "x"},
                {"kind": "brand", "text": ""},
                {"kind": "brand"},
                "Acme",
            ]})),
        ),
        // not analyzed, or analyzed without an entity list
        analyzed(ORG, 3, 1_600, Some(-0.9), None),
        analyzed(ORG, 4, 1_700, Some(-0.9), Some(json!({"v": 2}))),
        analyzed(
            ORG,
            5,
            1_800,
            Some(-0.9),
            Some(json!({"entities": {"kind": "brand", "text": "Acme"}})),
        ),
        // outside the window
        analyzed(
            ORG,
            6,
            2_000,
            Some(-0.9),
            Some(json!({"entities": [e("brand", "Acme")]})),
        ),
    ];
    s.store_mentions(ORG, &mentions, &[], vec![], 5_000).await.unwrap();
    let theirs = analyzed(
        OTHER,
        1,
        1_000,
        Some(-1.0),
        Some(json!({"entities": [e("brand", "Initech")]})),
    );
    s.store_mentions(OTHER, &[theirs], &[], vec![], 5_000).await.unwrap();
    // the interaction texts are another source
    let t = text("e1", 1_000, None, vec![entity("brand", "Hooli", None)]);
    s.store_texts(ORG, &[t]).await.unwrap();

    let q = query(SentimentSource::Mentions, None, 1_000, 2_000, 100);
    assert_eq!(
        s.top_entities(ORG, &q).await.unwrap(),
        [
            // "Acme" and "acme" in one text each: the smallest form names it
            count("brand", "Acme", None, 2, [2, 0, 0], Some(0.375)),
            count("competitor", "Globex", None, 1, [1, 0, 0], Some(0.25)),
        ]
    );
    let q = query(SentimentSource::Mentions, Some("competitor"), 1_000, 2_001, 100);
    assert_eq!(
        texts_of(&s.top_entities(ORG, &q).await.unwrap()),
        [("competitor", "Globex")]
    );
    let q = query(SentimentSource::Mentions, None, 2_000, 2_001, 100);
    assert_eq!(
        s.top_entities(ORG, &q).await.unwrap(),
        [count("brand", "Acme", None, 1, [0, 0, 1], Some(-0.9f32 as f64))]
    );
    let q = query(SentimentSource::Mentions, Some("person"), 0, 10_000, 100);
    assert_eq!(s.top_entities(ORG, &q).await.unwrap(), [], "personal data");
    let q = query(SentimentSource::Mentions, None, 0, 10_000, 100);
    assert_eq!(
        texts_of(&s.top_entities(OTHER, &q).await.unwrap()),
        [("brand", "Initech")]
    );
    let q = query(SentimentSource::Interactions, None, 0, 10_000, 100);
    assert_eq!(texts_of(&s.top_entities(ORG, &q).await.unwrap()), [("brand", "Hooli")]);
}

crate::common::contract!(
    counts_interaction_entities_by_texts,
    filters_by_kind_and_window,
    orgs_are_isolated,
    limits_outside_1_to_100_are_invalid,
    counts_mention_entities,
);
