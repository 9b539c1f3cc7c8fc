//! `crow social` from the command line: help, the example config, refusals.

use crow_e2e::*;

#[test]
fn social_help_lists_the_adapters() {
    let dir = tempfile::tempdir().unwrap();
    let out = crow(dir.path(), &["social", "--help"]);
    for adapter in ["rss", "mastodon", "bluesky", "reddit", "hackernews"] {
        assert!(out.contains(adapter), "{adapter} missing from:\n{out}");
    }
}

#[test]
fn the_example_config_parses_and_validates() {
    let dir = tempfile::tempdir().unwrap();
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/social.toml");
    let out = crow(dir.path(), &["social", "status", "--config", example.to_str().unwrap()]);
    for name in ["acme-press", "acme-mastodon", "acme-bluesky", "acme-reddit"] {
        assert!(out.contains(name), "{name} missing from:\n{out}");
    }
    assert!(out.contains("never"), "{out}");
}

#[test]
fn a_private_address_is_refused_and_a_bad_config_names_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let org = create_org(dir.path(), "Social");
    let config = dir.path().join("social.toml");
    std::fs::write(
        &config,
        format!(
            "org = \"{}\"\n[[sources]]\nname = \"intranet\"\nplatform = \"rss\"\nschedule = \"@hourly\"\nurl = \"http://127.0.0.1:9/feed.xml\"\n",
            org.org_id
        ),
    )
    .unwrap();
    let out = crow_output(
        dir.path(),
        &["social", "once", "--config", config.to_str().unwrap()],
        60,
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("sources[0].url") && err.contains("allow_private_addresses"),
        "{err}"
    );

    std::fs::write(
        &config,
        format!(
            "org = \"{}\"\n[[sources]]\nname = \"x\"\nplatform = \"mastodon\"\nschedule = \"every day\"\nquery = \"acme\"\n",
            org.org_id
        ),
    )
    .unwrap();
    let out = crow_output(
        dir.path(),
        &["social", "once", "--config", config.to_str().unwrap()],
        60,
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("sources[0].schedule"), "{err}");
}

/// Serves `body` (an RSS feed) to every request on 127.0.0.1; returns the base URL.
fn feed_server(body: &'static str) -> String {
    use std::io::{Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\ncontent-type: application/rss+xml\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    base
}

#[test]
fn crow_serve_polls_the_social_sources_on_their_schedule() {
    let dir = tempfile::tempdir().unwrap();
    let org = create_org(dir.path(), "Listening");
    let feed = feed_server(include_str!("../../crow-ingest/tests/data/social/fixtures/rss2.xml"));
    let config = dir.path().join("social.toml");
    std::fs::write(
        &config,
        format!(
            "org = \"{}\"\nallow_private_addresses = true\n[[sources]]\nname = \"press\"\nplatform = \"rss\"\nschedule = \"* * * * * *\"\nurl = \"{feed}/feed.xml\"\n",
            org.org_id
        ),
    )
    .unwrap();
    let srv = ServerProcess::start(dir.path(), 0, &["--social", config.to_str().unwrap()]);
    wait_for(60, "the server to store the feed's mentions", || {
        let out = crow(dir.path(), &["social", "mentions", "--org", &org.org_id, "--json"]);
        out.lines().count() >= 3
    });
    let status = crow(dir.path(), &["social", "status", "--config", config.to_str().unwrap()]);
    assert!(status.contains("press") && !status.contains("never"), "{status}");
    srv.stop();
}
