//! Unit tests of the privacy module.

use serde_json::json;

use super::*;
use crate::model::{Campaign, Context, EventType, Library, PageContext, Source};

fn sc() -> &'static Scrubber {
    Scrubber::global()
}

fn scrub(s: &str) -> String {
    match sc().scrub_text(s) {
        Some((c, _)) => c,
        None => s.to_owned(),
    }
}

#[track_caller]
fn whole(s: &str, placeholder: &str) {
    assert_eq!(
        sc().scrub_text(s),
        Some((placeholder.to_owned(), 1)),
        "{s:?} should be exactly {placeholder}"
    );
}

#[track_caller]
fn clean(s: &str) {
    assert_eq!(sc().scrub_text(s), None, "{s:?} should be clean");
    assert!(!sc().contains_pii(s), "{s:?}");
}

#[test]
fn emails() {
    for e in [
        "john@example.com",
        "john.doe+tag@mail.example.co.uk",
        "JOHN_DOE@EXAMPLE.ORG",
        "o'brien@example.ie",
        "müller@beispiel.de",
        "john%40example.com",
        "a.b-c@sub-domain.example.travel",
    ] {
        whole(e, "[email]");
    }
    assert_eq!(
        scrub("Contact: <jane@example.com>, or bob@example.org."),
        "Contact: <[email]>, or [email]."
    );
    assert_eq!(
        sc().scrub_text("a@b.co and c@d.io"),
        Some(("[email] and [email]".to_owned(), 2))
    );
    clean("logo@2x.png");
    clean("@handle mentioned us");
    clean("npm i pkg@1.2.3");
    clean("user@localhost");
}

#[test]
fn phones_positive() {
    for p in [
        "+4915112345678",
        "+1 (415) 555-2671",
        "+44 20 7946 0958",
        "+33 6 12 34 56 78",
        "+49 (0)151 12345678",
        "+81-90-1234-5678",
        "+91 98765 43210",
        "+61 412 345 678",
        "+55 11 91234-5678",
        "(415) 555-2671",
        "415-555-2671",
        "415.555.2671",
        "415 555 2671",
        "1 415 555 2671",
        "1-415-555-2671",
        "0151 12345678",
        "020 7946 0958",
        "06 12 34 56 78",
        "06.12.34.56.78",
        "030-12345678",
        "(030) 1234567",
        "0049 151 12345678",
        "07700 900123",
    ] {
        whole(p, "[phone]");
    }
    assert_eq!(scrub("Call me at 415-555-2671!"), "Call me at [phone]!");
    assert_eq!(scrub("tel:+14155552671"), "tel:[phone]");
    assert_eq!(scrub("Tel.: +49 30 1234567, Fax"), "Tel.: [phone], Fax");
    assert_eq!(scrub("電話090-1234-5678"), "電話[phone]");
}

#[test]
fn phones_negative() {
    for s in [
        "19.99",
        "Price: $1,299.99",
        "2024-05-01",
        "2024-05-01T12:30:00Z",
        "2024-05-01T12:30:00.000+02:00",
        "01.05.2024 12:30",
        "05/01/2024 10:00",
        "order 100234",
        "Order #1002345678",
        "1714557600",
        "1714557600123",
        "v1.2.3",
        "version 1.2.3.4567",
        "550e8400-e29b-41d4-a716-446655440000",
        "12345678-1234-1234-1234-123456789012",
        "5f2b9c1e8a7d4e3f",
        "SKU-100234-XL",
        "AB-1234567890",
        "sku 4006381333931",
        "+1.5%",
        "+20 points",
        "10 20 30 40 50",
        "100 200 3000",
        "199.99 249.99",
        "Size 38 / 40 / 42",
        "1920x1080",
        "ISBN 978-3-16-148410-0",
        "Qty: 2, total: 59.98 EUR",
        "415-555-267",
        "12:30:45",
        "Win64; x64",
    ] {
        clean(s);
    }
}

#[test]
fn cards() {
    for c in [
        "4111111111111111",
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "4012888888881881",
        "5555555555554444",
        "5105 1051 0510 5100",
        "2223003122003222",
        "378282246310005",
        "3782 822463 10005",
        "371449635398431",
        "6011111111111117",
        "6011 0009 9013 9424",
        "3530111333300000",
        "36227206271667",
        "6200000000000005",
        "4222222222222",
    ] {
        whole(c, "[card]");
    }
    assert_eq!(scrub("card: 4111 1111 1111 1111 exp 12/27"), "card: [card] exp 12/27");
    // Luhn failures, wrong prefixes, mixed separators
    clean("4111111111111112");
    clean("4111 1111 1111 1112");
    clean("1234567812345678");
    clean("9111111111111111");
    clean("4111 1111-1111 1111");
    clean("SKU-4111111111111111");
    clean("4111111111111111XL");
}

#[test]
fn ibans() {
    for i in [
        "DE89370400440532013000",
        "DE89 3704 0044 0532 0130 00",
        "GB82WEST12345698765432",
        "GB82 WEST 1234 5698 7654 32",
        "FR1420041010050500013M02606",
        "FR14 2004 1010 0505 0001 3M02 606",
        "NL91ABNA0417164300",
        "ES9121000418450200051332",
        "CH9300762011623852957",
        "NO9386011117947",
        "BE68539007547034",
        "IT60X0542811101000000123456",
    ] {
        whole(i, "[iban]");
    }
    assert_eq!(
        scrub("Please wire to DE89 3704 0044 0532 0130 00 today"),
        "Please wire to [iban] today"
    );
    clean("DE89370400440532013001"); // bad checksum
    clean("GB82WEST1234569876543"); // wrong length
    clean("XX82WEST12345698765432"); // unknown country
    clean("Model GB82 WEST");
}

#[test]
fn ip_addresses() {
    for ip in [
        "192.168.1.10",
        "8.8.8.8",
        "203.0.113.255",
        "2001:db8:85a3::8a2e:370:7334",
        "2001:0db8:85a3:0000:0000:8a2e:0370:7334",
        "fe80::1",
        "::1",
        "2001:db8::",
        "::ffff:192.0.2.1",
    ] {
        whole(ip, "[ip]");
    }
    assert_eq!(scrub("from 10.0.0.1:8080 via proxy"), "from [ip]:8080 via proxy");
    assert_eq!(scrub("client=[2001:db8::1]:443"), "client=[[ip]]:443");
    assert_eq!(scrub("ip 1.2.3.4."), "ip [ip].");
    clean("Chrome/1.2.3.4");
    clean("256.1.1.1");
    clean("1.2.3");
    clean("01.02.03.04");
    clean("1.2.3.4.5");
    clean("std::vec::Vec");
    clean("00:1A:2B:3C:4D:5E");
    clean("10:30:00");
    clean("::");
}

#[test]
fn ssns() {
    whole("123-45-6789", "[ssn]");
    whole("078-05-1120", "[ssn]");
    assert_eq!(scrub("SSN: 123-45-6789."), "SSN: [ssn].");
    clean("000-12-3456");
    clean("666-12-3456");
    clean("900-12-3456");
    clean("123-00-4567");
    clean("123-45-0000");
    clean("123 45 6789");
}

#[test]
fn mixed_and_counts() {
    let (out, n) = sc()
        .scrub_text("Jane (jane@x.io, +44 20 7946 0958) paid with 4111111111111111 from 8.8.4.4")
        .unwrap();
    assert_eq!(out, "Jane ([email], [phone]) paid with [card] from [ip]");
    assert_eq!(n, 4);
    let (out, n) = sc().scrub_text("415-555-2671 4111 1111 1111 1111").unwrap();
    assert_eq!((out.as_str(), n), ("[phone] [card]", 2));
    // a long list of numbers: every phone is found
    let list = (0..20)
        .map(|k| format!("415-555-{:04}", 2600 + k))
        .collect::<Vec<_>>()
        .join(" ");
    let (out, n) = sc().scrub_text(&list).unwrap();
    assert_eq!(n, 20, "{out}");
    assert_eq!(out, vec!["[phone]"; 20].join(" "));
}

#[test]
fn clean_strings() {
    for s in [
        "",
        "Add to cart",
        "/products/42",
        "Product Viewed",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Safari/537.36",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1",
        "en-US",
        "Europe/Paris",
        "spring_sale_2024",
        "[email]",
        "[phone] [card] [iban] [ip] [ssn] [secret] [redacted]",
    ] {
        clean(s);
    }
}

#[test]
fn idempotent() {
    let s = "mail a@b.com, call +1 415 555 2671, card 4111111111111111, ip 1.2.3.4";
    let (once, _) = sc().scrub_text(s).unwrap();
    assert_eq!(sc().scrub_text(&once), None);
    let u = "https://x.io/a?token=abc&email=a%40b.com&page=2";
    let (once, _) = sc().scrub_url(u).unwrap();
    assert_eq!(sc().scrub_url(&once), None);
}

#[test]
fn urls() {
    assert_eq!(
        sc().scrub_url("https://shop.example.com/cart?token=abc&email=a%40b.com&page=2"),
        Some((
            "https://shop.example.com/cart?token=[secret]&email=[email]&page=2".to_owned(),
            2
        ))
    );
    // bare query strings, with and without '?'
    assert_eq!(
        sc().scrub_url("?token=abc&email=a%40b.com&page=2").unwrap().0,
        "?token=[secret]&email=[email]&page=2"
    );
    assert_eq!(
        sc().scrub_url("access_token=xyz&page=2").unwrap().0,
        "access_token=[secret]&page=2"
    );
    for (name, ph) in [
        ("token", "[secret]"),
        ("access_token", "[secret]"),
        ("id_token", "[secret]"),
        ("auth", "[secret]"),
        ("password", "[secret]"),
        ("passwd", "[secret]"),
        ("pwd", "[secret]"),
        ("secret", "[secret]"),
        ("api_key", "[secret]"),
        ("apikey", "[secret]"),
        ("key", "[secret]"),
        ("code", "[secret]"),
        ("session", "[secret]"),
        ("sessionid", "[secret]"),
        ("PHPSESSID", "[secret]"),
        ("X-Amz-Signature", "[secret]"),
        ("gclid", "[secret]"),
        ("fbclid", "[secret]"),
        ("email", "[email]"),
        ("e-mail", "[email]"),
        ("phone", "[phone]"),
        ("ssn", "[ssn]"),
    ] {
        let u = format!("https://a.io/p?{name}=v4lu3x&page=2");
        assert_eq!(
            sc().scrub_url(&u),
            Some((format!("https://a.io/p?{name}={ph}&page=2"), 1)),
            "{name}"
        );
    }
    // a detected value under a secret name gets the detected placeholder
    assert_eq!(
        sc().scrub_url("/login?user=x&token=john%40example.com").unwrap().0,
        "/login?user=x&token=[email]"
    );
    // PII in ordinary parameters and in the path
    assert_eq!(
        sc().scrub_url("https://a.io/search?q=call+me+at+415-555-2671&lang=en")
            .unwrap()
            .0,
        "https://a.io/search?q=call%20me%20at%20[phone]&lang=en"
    );
    assert_eq!(
        sc().scrub_url("https://a.io/users/john%40example.com/orders?page=2")
            .unwrap()
            .0,
        "https://a.io/users/[email]/orders?page=2"
    );
    assert_eq!(
        sc().scrub_url("https://a.io/users/jane@example.com").unwrap().0,
        "https://a.io/users/[email]"
    );
    assert_eq!(
        sc().scrub_url("https://bob:hunter2@a.io/x").unwrap().0,
        "https://[secret]@a.io/x"
    );
    assert_eq!(
        sc().scrub_url("http://192.168.0.12:8080/admin").unwrap().0,
        "http://[ip]:8080/admin"
    );
    // OAuth implicit flow: parameters in the fragment
    assert_eq!(
        sc().scrub_url("https://app.io/cb#access_token=eyJhbGciOi&token_type=bearer&expires_in=3600")
            .unwrap()
            .0,
        "https://app.io/cb#access_token=[secret]&token_type=bearer&expires_in=3600"
    );
    assert_eq!(sc().scrub_url("mailto:jane@example.com").unwrap().0, "mailto:[email]");
    // clean URLs are untouched and not copied
    for u in [
        "https://shop.example.com/products/42?page=2&utm_source=google&utm_medium=cpc",
        "https://a.io/p?q=red%20shoes&size=42",
        "https://medium.com/@user/post-1234",
        "/products/42",
        "?page=2",
        "https://a.io/p?token=",
        "https://a.io/img/logo@2x.png",
        "https://a.io/#section-2",
    ] {
        assert_eq!(sc().scrub_url(u), None, "{u}");
    }
}

#[test]
fn json_values() {
    let mut v = json!({
        "email": "jane@example.com",
        "Password": "hunter2",
        "phone": 4155552671u64,
        "card_number": "4111 1111 1111 1111",
        "iban": "DE89 3704 0044 0532 0130 00",
        "ssn": "123-45-6789",
        "firstName": "Jane",
        "email_verified": true,
        "token": null,
        "plan": "pro",
        "price": 19.99,
        "count": 3,
        "stored_card": 4111111111111111u64,
        "note": "call me on +44 20 7946 0958",
        "landing": "https://a.io/?token=abc&page=2",
        "nested": {"list": ["ok", "x@y.com", {"api_key": ["k1", "k2"]}]},
        "by_user": {"john@example.com": 3, "[email]": 1},
        "empty_secret": ""
    });
    let n = sc().scrub_json(&mut v);
    assert_eq!(
        v,
        json!({
            "email": "[email]",
            "Password": "[secret]",
            "phone": "[phone]",
            "card_number": "[card]",
            "iban": "[iban]",
            "ssn": "[ssn]",
            "firstName": "[redacted]",
            "email_verified": true,
            "token": null,
            "plan": "pro",
            "price": 19.99,
            "count": 3,
            "stored_card": "[card]",
            "note": "call me on [phone]",
            "landing": "https://a.io/?token=[secret]&page=2",
            "nested": {"list": ["ok", "[email]", {"api_key": ["[secret]", "[secret]"]}]},
            "by_user": {"[email]#2": 3, "[email]": 1},
            "empty_secret": ""
        })
    );
    assert_eq!(n, 14);
    // a second pass finds nothing
    assert_eq!(sc().scrub_json(&mut v), 0);
}

#[test]
fn pseudonyms() {
    let a = pseudonymize(b"key-1", "john@example.com");
    assert_eq!(a, pseudonymize(b"key-1", "john@example.com"));
    assert_ne!(a, pseudonymize(b"key-2", "john@example.com"));
    assert_ne!(a, pseudonymize(b"key-1", "jane@example.com"));
    assert!(a.starts_with("psn_"));
    assert_eq!(a.len(), 4 + 32);
    assert!(a[4..].bytes().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    // RFC 4231 test case 2: HMAC-SHA256("Jefe", "what do ya want for nothing?")
    assert_eq!(
        pseudonymize(b"Jefe", "what do ya want for nothing?"),
        "psn_5bdcc146bf60754e6a042426089575c7"
    );
    assert!(!sc().contains_pii(&a));
}

#[test]
fn ip_truncation() {
    assert_eq!(truncate_ip("203.0.113.77").as_deref(), Some("203.0.113.0"));
    assert_eq!(truncate_ip(" 8.8.4.4 ").as_deref(), Some("8.8.4.0"));
    assert_eq!(truncate_ip("10.1.2.3:8080").as_deref(), Some("10.1.2.0"));
    assert_eq!(
        truncate_ip("2001:db8:85a3:8d3:1319:8a2e:370:7348").as_deref(),
        Some("2001:db8:85a3::")
    );
    assert_eq!(truncate_ip("2001:db8::1").as_deref(), Some("2001:db8::"));
    assert_eq!(
        truncate_ip("[2a00:1450:4001:82b::200e]:443").as_deref(),
        Some("2a00:1450:4001::")
    );
    assert_eq!(truncate_ip("[::1]").as_deref(), Some("::"));
    assert_eq!(truncate_ip("::ffff:192.0.2.128").as_deref(), Some("192.0.2.0"));
    assert_eq!(truncate_ip("not an ip"), None);
    assert_eq!(truncate_ip("256.1.1.1"), None);
    assert_eq!(truncate_ip(""), None);
}

fn event() -> Interaction {
    Interaction {
        id: "evt_1".into(),
        org_id: "org_1".into(),
        event_type: EventType::Track,
        name: Some("Signed up as jane.doe@example.com".into()),
        anonymous_id: Some("anon-7f3a9c".into()),
        user_id: Some("jane.doe@example.com".into()),
        session_id: Some("sess-1".into()),
        group_id: Some("acme-+1 (415) 555-2671".into()),
        previous_id: Some("jane.doe@example.com".into()),
        properties: json!({
            "plan": "pro",
            "contact": "jane.doe@example.com",
            "card": "4111 1111 1111 1111",
            "iban": "GB82 WEST 1234 5698 7654 32",
            "password": "hunter2-secret",
            "items": [{"sku": "SKU-42", "gift_note": "text me at +44 20 7946 0958"}],
            "ssn": "123-45-6789"
        })
        .as_object()
        .unwrap()
        .clone(),
        traits: json!({"email": "jane.doe@example.com", "phone": "+4915112345678", "name_tag": "ok"})
            .as_object()
            .unwrap()
            .clone(),
        context: Context {
            page: Some(PageContext {
                url: Some(
                    "https://shop.example.com/welcome?email=jane.doe%40example.com&token=s3cr3tT0k&page=2".into(),
                ),
                path: Some("/users/jane.doe@example.com".into()),
                referrer: Some("https://mail.example.com/?to=jane.doe@example.com".into()),
                title: Some("Welcome jane.doe@example.com".into()),
                search: Some("?email=jane.doe%40example.com&token=s3cr3tT0k".into()),
            }),
            user_agent: None,
            locale: Some("en-US".into()),
            timezone: Some("Europe/London".into()),
            screen: None,
            campaign: Some(Campaign {
                name: Some("spring".into()),
                source: Some("newsletter".into()),
                medium: Some("email".into()),
                term: Some("jane.doe@example.com".into()),
                content: Some("call 415-555-2671".into()),
                click_id: Some("gclid".into()),
            }),
            ip: Some("203.0.113.77".into()),
            library: Some(Library {
                name: "analytics.js".into(),
                version: Some("4.1.0".into()),
            }),
            extra: json!({"device_ip": "198.51.100.23", "support": {"email": "jane.doe@example.com"}})
                .as_object()
                .unwrap()
                .clone(),
        },
        timestamp: 1_714_557_600_000,
        original_timestamp: None,
        sent_at: None,
        received_at: 1_714_557_600_000,
        source: Source::Segment,
        is_bot: false,
        pii_scrubbed: 1,
        person_id: None,
        referrer_class: None,
        analysis: None,
    }
}

#[test]
fn interaction_scrubbed_everywhere() {
    let key = b"org_1 pseudonym key";
    let mut e = event();
    let n = scrub_interaction(&mut e, key);
    let s = serde_json::to_string(&e).unwrap();
    for raw in [
        "jane.doe",
        "doe@",
        "%40example",
        "4111",
        "GB82",
        "WEST",
        "hunter2",
        "s3cr3tT0k",
        "7946",
        "2671",
        "15112345678",
        "123-45-6789",
        "203.0.113.77",
        "198.51.100.23",
    ] {
        assert!(!s.contains(raw), "{raw:?} survived in {s}");
    }
    // ids with PII are pseudonymized, consistently; clean ids are kept
    let psn = pseudonymize(key, "jane.doe@example.com");
    assert_eq!(e.user_id.as_deref(), Some(psn.as_str()));
    assert_eq!(e.previous_id.as_deref(), Some(psn.as_str()));
    assert_eq!(
        e.group_id.as_deref(),
        Some(pseudonymize(key, "acme-+1 (415) 555-2671").as_str())
    );
    assert_eq!(e.anonymous_id.as_deref(), Some("anon-7f3a9c"));
    assert_eq!(e.session_id.as_deref(), Some("sess-1"));
    // the IP is truncated, not removed
    assert_eq!(e.context.ip.as_deref(), Some("203.0.113.0"));
    // kept: clean values, page=2, the campaign parameter name
    let page = e.context.page.as_ref().unwrap();
    assert_eq!(
        page.url.as_deref(),
        Some("https://shop.example.com/welcome?email=[email]&token=[secret]&page=2")
    );
    assert_eq!(page.title.as_deref(), Some("Welcome [email]"));
    assert_eq!(e.properties["plan"], "pro");
    assert_eq!(e.properties["items"][0]["sku"], "SKU-42");
    assert_eq!(e.traits["name_tag"], "ok");
    assert_eq!(e.context.locale.as_deref(), Some("en-US"));
    let camp = e.context.campaign.as_ref().unwrap();
    assert_eq!(camp.click_id.as_deref(), Some("gclid"));
    assert_eq!(camp.content.as_deref(), Some("call [phone]"));
    // the count: name 1, ids 3, properties 6, traits 2, url 2, path 1, referrer 1, title 1,
    // search 2, campaign 2, extra 2
    assert_eq!(n, 23);
    assert_eq!(e.pii_scrubbed, 1 + n);
    // scrubbing again changes nothing
    let before = e.clone();
    assert_eq!(scrub_interaction(&mut e, key), 0);
    assert_eq!(e, before);
}

#[test]
fn interaction_ip_forms() {
    let mut e = event();
    e.context.ip = Some("2001:db8:85a3:8d3:1319:8a2e:370:7348".into());
    scrub_interaction(&mut e, b"k");
    assert_eq!(e.context.ip.as_deref(), Some("2001:db8:85a3::"));
    e.context.ip = Some("198.51.100.7, 10.0.0.1".into());
    scrub_interaction(&mut e, b"k");
    assert_eq!(e.context.ip.as_deref(), Some("198.51.100.0"));
    e.context.ip = Some("unknown".into());
    scrub_interaction(&mut e, b"k");
    assert_eq!(e.context.ip, None);
}

/// Rough timing of the clean path; run with
/// `cargo test -p crow-core --release -- --ignored --nocapture timing`.
#[test]
#[ignore = "timing, not a check; run in release"]
fn timing() {
    let s = sc();
    for text in [
        "Add to cart",
        "/products/42",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Safari/537.36",
        "https://shop.example.com/products/42?page=2&utm_source=google&utm_medium=cpc",
        "Contact jane@example.com or +1 (415) 555-2671",
        "jane@example.com",
        "call +1 (415) 555-2671",
        "Paid with 4111 1111 1111 1111",
    ] {
        let iters = 100_000u32;
        let (mut per, mut per_url) = (std::time::Duration::MAX, std::time::Duration::MAX);
        let mut k = 0u32;
        for _round in 0..7 {
            let t = std::time::Instant::now();
            for _ in 0..iters {
                k += s.scrub_text(std::hint::black_box(text)).map_or(0, |x| x.1);
            }
            per = per.min(t.elapsed() / iters);
            let t = std::time::Instant::now();
            for _ in 0..iters {
                k += s.scrub_url(std::hint::black_box(text)).map_or(0, |x| x.1);
            }
            per_url = per_url.min(t.elapsed() / iters);
        }
        println!("{per:>10?} text  {per_url:>10?} url  ({k})  {text}");
    }
}

/// Deterministic pseudo-random strings over a PII-prone alphabet: no panics, no slicing off a
/// char boundary, and a second pass finds nothing.
#[test]
fn no_panics_and_idempotent_on_noise() {
    const ALPHABET: &[&str] = &[
        "0", "1", "4", "5", "9", " ", "-", ".", "/", "(", ")", "+", ":", "@", "%40", "%", "=", "&", "?", "#", "a", "x",
        "DE", "GB", "é", "電", "_", ",", "[", "]", "::", "com", "4111", "415", "2671", "ffff", "89", "2001", "e", "Z",
    ];
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..20_000 {
        let len = (next() % 40) as usize;
        let s: String = (0..len)
            .map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize])
            .collect();
        if let Some((once, _)) = sc().scrub_text(&s) {
            assert_eq!(sc().scrub_text(&once), None, "{s:?} -> {once:?}");
        }
        if let Some((once, _)) = sc().scrub_url(&s) {
            assert_eq!(sc().scrub_url(&once), None, "url {s:?} -> {once:?}");
        }
        let mut v = serde_json::Value::String(s.clone());
        sc().scrub_json(&mut v);
        assert_eq!(sc().scrub_json(&mut v), 0, "json {s:?}");
        let _ = truncate_ip(&s);
        let _ = crate::useragent::parse(&s);
    }
}
