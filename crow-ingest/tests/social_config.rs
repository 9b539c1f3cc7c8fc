//! `examples/social.toml` parses and validates; invalid configs fail with a message that
//! names the field.
#![cfg(feature = "social")]

use crow_ingest::social::Platform;
use crow_ingest::social::config::{RateLimit, SocialConfig, SourceMode, default_rate_limit};
use crow_ingest::social::schedule::due_at_start;

const EXAMPLE: &str = include_str!("../../examples/social.toml");

fn parse(text: &str) -> SocialConfig {
    toml::from_str(text).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn the_example_parses_and_validates() {
    let config = parse(EXAMPLE);
    config.validate().unwrap();
    assert_eq!(config.org, "acme");
    assert_eq!(config.near_duplicate_distance, 3);
    assert_eq!(config.prefilter.max_per_run, Some(200));
    assert_eq!(config.prefilter.languages, ["en", "de"]);
    // One source per platform, plus a disabled one.
    let platforms: Vec<Platform> = config.sources.iter().map(|s| s.platform).collect();
    for p in Platform::ALL {
        assert!(platforms.contains(&p), "no {p} source in the example");
    }
    assert_eq!(config.enabled_sources().count(), config.sources.len() - 1);
    let reddit = config.source("acme-reddit").unwrap();
    assert_eq!(
        reddit.rate_limit(),
        RateLimit {
            requests: 30,
            per_secs: 60
        }
    );
    assert_eq!(reddit.base_url(), Some("https://www.reddit.com"));
    let bluesky = config.source("acme-bluesky").unwrap();
    assert_eq!(bluesky.base_url(), Some("https://public.api.bsky.app"));
    assert_eq!(bluesky.rate_limit(), default_rate_limit(Platform::Bluesky, false));
    assert_eq!(
        config.source("acme-fosstodon-search").unwrap().mode(),
        SourceMode::Search
    );
    for s in &config.sources {
        let schedule = s.parsed_schedule().unwrap();
        assert!(due_at_start(&schedule, None, 0), "{} never ran", s.name);
    }
    // The pipeline's part.
    let pipeline = config.pipeline_config();
    assert_eq!(pipeline.near_duplicate_window_days, 30);
    assert_eq!(pipeline.prefilter, config.prefilter);
}

#[test]
fn a_minimal_config_gets_the_defaults() {
    let config = parse(
        r#"
        org = "acme"
        [[sources]]
        name = "hn"
        platform = "hackernews"
        schedule = "@hourly"
        query = "acme"
        "#,
    );
    config.validate().unwrap();
    assert!(!config.allow_private_addresses);
    assert_eq!((config.timeout_secs, config.max_pages), (20, 5));
    assert_eq!(
        (config.near_duplicate_distance, config.near_duplicate_window_days),
        (3, 30)
    );
    assert_eq!(config.prefilter.min_abs_score, 0.3);
    assert!(config.sources[0].enabled);
    // Serializing keeps everything (e.g. for `crow social config --show`).
    let again: SocialConfig = serde_json::from_value(serde_json::to_value(&config).unwrap()).unwrap();
    assert_eq!(again, config);
}

/// A valid config with one edit; the validation error must contain `want`.
fn invalid(edit: &str, want: &str) {
    let text = format!(
        r#"
        org = "acme"
        {edit}
        "#
    );
    let config = parse(&text);
    let err = config.validate().expect_err(edit).to_string();
    assert!(err.starts_with("invalid social config: "), "{err}");
    assert!(err.contains(want), "{edit}\n  got:  {err}\n  want: {want}");
}

const HN: &str = r#"
[[sources]]
name = "hn"
platform = "hackernews"
schedule = "@hourly"
query = "acme"
"#;

#[test]
fn invalid_configs_name_the_field() {
    invalid("", "sources: at least one [[sources]] entry is needed");
    invalid(
        &format!("timeout_secs = 0\n{HN}"),
        "timeout_secs: must be 1..=300 (got 0)",
    );
    invalid(
        &format!("max_pages = 1000\n{HN}"),
        "max_pages: must be 1..=100 (got 1000)",
    );
    invalid(
        &format!("near_duplicate_distance = 5\n{HN}"),
        "near_duplicate_distance: must be at most 3 (got 5)",
    );
    invalid(
        &format!("near_duplicate_window_days = 0\n{HN}"),
        "near_duplicate_window_days: must be 1..=365 (got 0)",
    );
    invalid(
        &format!("{HN}\n[prefilter]\nlanguages = [\"english\"]"),
        "prefilter.languages[0]: \"english\" is not an ISO 639 language code",
    );
    invalid(
        &format!("{HN}{HN}"),
        "sources[1].name: \"hn\" is already the name of sources[0]",
    );
    invalid(
        &HN.replace("name = \"hn\"", "name = \"Acme HN\""),
        "sources[0].name: \"Acme HN\" must be 1 to 64 lowercase letters, digits, '-' or '_'",
    );
    invalid(
        &format!(
            "{HN}{}",
            HN.replace("\"hn\"", "\"hn2\"").replace("@hourly", "*/5 * * *")
        ),
        "sources[1].schedule: \"*/5 * * *\" has 4 fields; expected 5",
    );
    invalid(
        &HN.replace("@hourly", "0 25 * * *"),
        "sources[0].schedule: \"0 25 * * *\":",
    );
    invalid(
        &HN.replace("@hourly", "0 9 1 * mon"),
        "sources[0].schedule: \"0 9 1 * mon\" restricts both the day of month and the day of week",
    );
    invalid(
        &HN.replace("query = \"acme\"", ""),
        "sources[0].query: is required for hackernews sources",
    );
    invalid(&HN.replace("\"acme\"", "\"  \""), "sources[0].query: must not be blank");
    invalid(
        &format!("{HN}mode = \"search\""),
        "sources[0].mode: only mastodon sources have a mode, not hackernews",
    );
    invalid(
        &format!("{HN}url = \"ftp://hn.example\""),
        "sources[0].url: \"ftp://hn.example\" is not an http:// or https:// URL",
    );
    invalid(
        &format!("{HN}auth_token_env = \"ghp_Secret123\""),
        "sources[0].auth_token_env: must be the name of an environment variable",
    );
    invalid(
        &format!("{HN}rate_limit = {{ requests = 0, per_secs = 60 }}"),
        "sources[0].rate_limit.requests: must be at least 1",
    );
    invalid(
        r#"
        [[sources]]
        name = "feed"
        platform = "rss"
        schedule = "@hourly"
        "#,
        "sources[0].url: is required for rss sources (the feed URL)",
    );
    invalid(
        r#"
        [[sources]]
        name = "feed"
        platform = "rss"
        schedule = "@hourly"
        url = "http://192.168.1.10/feed.xml"
        "#,
        "sources[0].url: \"http://192.168.1.10/feed.xml\" points to a loopback or private address; \
         set allow_private_addresses = true",
    );
    invalid(
        r#"
        [[sources]]
        name = "masto"
        platform = "mastodon"
        schedule = "@hourly"
        query = "acme buds"
        "#,
        "sources[0].query: \"acme buds\" is not a hashtag",
    );
}

#[test]
fn private_addresses_can_be_allowed() {
    let config = parse(
        r#"
        org = "acme"
        allow_private_addresses = true
        [[sources]]
        name = "feed"
        platform = "rss"
        schedule = "@hourly"
        url = "http://192.168.1.10/feed.xml"
        "#,
    );
    config.validate().unwrap();
}

#[test]
fn unknown_keys_and_platforms_are_parse_errors() {
    let typo = format!("org = \"acme\"\ntimeout = 3\n{HN}");
    let err = toml::from_str::<SocialConfig>(&typo).unwrap_err().to_string();
    assert!(err.contains("unknown field `timeout`"), "{err}");
    let err = toml::from_str::<SocialConfig>(&format!("org = \"acme\"\n{}", HN.replace("hackernews", "twitter")))
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown variant `twitter`"), "{err}");
    let err = toml::from_str::<SocialConfig>(&format!("org = \"acme\"\n{HN}mode = \"timeline\""))
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown variant `timeline`"), "{err}");
}
