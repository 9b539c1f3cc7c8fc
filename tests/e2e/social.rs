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
