//! Segment's and PostHog's official Python libraries, unmodified, with their host pointed at
//! `crow serve`: every event they send is stored.

use crow_e2e::*;

const SEGMENT: &str = r#"
import sys
import segment.analytics as analytics
errors = []
analytics.write_key = sys.argv[1]
analytics.host = sys.argv[2]
analytics.sync_mode = True
analytics.on_error = lambda e, batch: errors.append(repr(e))
analytics.identify('user-42', {'plan': 'pro', 'email': 'grace@example.com'})
analytics.track('user-42', 'Order Completed', {'revenue': 39.5, 'currency': 'EUR'})
analytics.page('user-42', 'Docs', 'Getting started', {'url': 'https://shop.test/docs?token=s3cr3t'})
analytics.screen('user-42', 'App', 'Home')
analytics.group('user-42', 'group-7', {'name': 'Acme'})
analytics.alias('anon-previous', 'user-42')
analytics.track(anonymous_id='anon-only', event='Anonymous Thing')
analytics.flush()
if errors:
    print('ERRORS', errors)
    sys.exit(1)
print('ok')
"#;

const POSTHOG: &str = r#"
import sys
from posthog import Posthog
errors = []
p = Posthog(sys.argv[1], host=sys.argv[2], sync_mode=True, on_error=lambda e, batch: errors.append(repr(e)))
p.capture('signed up', distinct_id='ph-user-1', properties={'plan': 'pro'})
p.capture('$pageview', distinct_id='ph-user-1', properties={'$current_url': 'https://shop.test/pricing'})
p.capture('purchase', distinct_id='ph-user-2', properties={'amount': 12})
p.flush()
p.shutdown()
if errors:
    print('ERRORS', errors)
    sys.exit(1)
print('ok')
"#;

#[test]
fn segment_analytics_python_works_unmodified() {
    let dir = tempfile::tempdir().unwrap();
    let org = create_org(dir.path(), "Seg");
    let srv = ServerProcess::start(dir.path(), 0, &[]);
    let out = run_python(SEGMENT, &[&org.write_key, &srv.base]);
    assert!(out.contains("ok"), "{out}");
    let all = all_interactions(&srv.base, &org.api_key);
    let mut types: Vec<&str> = all.iter().map(|e| e["type"].as_str().unwrap()).collect();
    types.sort();
    assert_eq!(
        types,
        ["alias", "group", "identify", "page", "screen", "track", "track"],
        "{all:#?}"
    );
    let order = all.iter().find(|e| e["name"] == "Order Completed").unwrap();
    assert_eq!(order["user_id"], "user-42");
    assert_eq!(order["source"], "segment");
    assert!(
        order["id"].as_str().unwrap().len() >= 32,
        "Segment's messageId is the id: {order}"
    );
    let text = serde_json::to_string(&all).unwrap();
    assert!(
        !text.contains("grace@example.com") && !text.contains("s3cr3t"),
        "PII stored: {text}"
    );
    assert!(all.iter().any(|e| e["anonymous_id"] == "anon-only"));
}

#[test]
fn posthog_python_works_unmodified() {
    let dir = tempfile::tempdir().unwrap();
    let org = create_org(dir.path(), "PH");
    let srv = ServerProcess::start(dir.path(), 0, &[]);
    let out = run_python(POSTHOG, &[&org.write_key, &srv.base]);
    assert!(out.contains("ok"), "{out}\n{}", srv.log());
    let all = all_interactions(&srv.base, &org.api_key);
    assert_eq!(all.len(), 3, "{all:#?}");
    let signed = all.iter().find(|e| e["name"] == "signed up").unwrap();
    assert_eq!(signed["source"], "posthog");
    assert!(
        signed["id"].as_str().unwrap().len() >= 32,
        "PostHog's uuid is the id: {signed}"
    );
    let pv = all
        .iter()
        .find(|e| e["type"] == "page")
        .expect("$pageview becomes a page view");
    assert_eq!(pv["context"]["page"]["url"], "https://shop.test/pricing");
}
