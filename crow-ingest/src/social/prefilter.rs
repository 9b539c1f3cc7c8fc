//! The pre-filter: which mentions go on to the (costly) `analyze-social` workflow.
//!
//! Every new mention is scored by the cheap lexicon tier first (a
//! [`TextAnalyzer`](crow_core::ports::TextAnalyzer) answering with a
//! [`TextAnalysis`]). [`decide`] then applies the [`PrefilterRules`] to the mention and that
//! analysis:
//!
//! 1. a mention containing one of `exclude_keywords` is never selected;
//! 2. when `languages` is not empty, a mention in another language (or in none detected) is
//!    never selected;
//! 3. otherwise it is selected when any rule says so: a strong sentiment
//!    (`|score| ≥ min_abs_score`), a catalog product named (`products`), a brand named
//!    (`brands`), one of `keywords`, or enough engagement (`min_engagement`).
//!
//! Last, [`apply_cap`] keeps at most `max_per_run` of a pass's selected mentions, the ones
//! with the strongest sentiment first.
//!
//! # Example
//!
//! ```
//! use crow_core::model::{Engagement, SocialMention};
//! use crow_core::ports::{Sentiment, TextAnalysis};
//! use crow_ingest::social::prefilter::{PrefilterRules, apply_cap, decide, reason};
//!
//! let rules: PrefilterRules = serde_json::from_str(r#"{"keywords": ["refund"]}"#).unwrap();
//! let mention = SocialMention {
//!     id: "mastodon:1".into(),
//!     org_id: "acme".into(),
//!     platform: "mastodon".into(),
//!     platform_id: "1".into(),
//!     author: None,
//!     text: "Still waiting for my refund from Acme".into(),
//!     url: None,
//!     language: Some("en".into()),
//!     posted_at: 0,
//!     fetched_at: 0,
//!     sentiment: None,
//!     source: "acme-mastodon".into(),
//!     query: None,
//!     engagement: Engagement::default(),
//!     simhash: None,
//!     lexicon_score: None,
//!     selected: false,
//!     analysis: None,
//! };
//! let analysis = TextAnalysis {
//!     sentiment: Some(Sentiment { label: "neutral".into(), score: -0.1, tier: "lexicon".into() }),
//!     ..TextAnalysis::default()
//! };
//! let decision = decide(&rules, &mention, &analysis);
//! assert!(decision.selected);
//! assert_eq!(decision.reasons, vec![reason::KEYWORD]);
//! assert_eq!(apply_cap(&rules, &[mention], &[decision]), vec![true]);
//! ```

use crow_core::model::SocialMention;
use crow_core::ports::TextAnalysis;
use serde::{Deserialize, Serialize};

use super::SocialError;

/// The reasons a [`Decision`] gives, as stable names (for logs, the API and the dashboard).
pub mod reason {
    /// Selected: the lexicon sentiment is strong enough (`|score| ≥ min_abs_score`).
    pub const SENTIMENT: &str = "sentiment";
    /// Selected: it names a catalog product (a `product` entity).
    pub const PRODUCT: &str = "product";
    /// Selected: it names a brand (a `brand` entity).
    pub const BRAND: &str = "brand";
    /// Selected: it contains one of the keywords.
    pub const KEYWORD: &str = "keyword";
    /// Selected: likes + reposts + replies reach `min_engagement`.
    pub const ENGAGEMENT: &str = "engagement";
    /// Not selected: it contains one of the excluded keywords.
    pub const EXCLUDED: &str = "excluded_keyword";
    /// Not selected: its language is not one of `languages` (or none was detected).
    pub const LANGUAGE: &str = "language";
    /// Not selected: no rule selected it.
    pub const NO_RULE: &str = "no_rule_matched";
    /// Not selected: selected by a rule, but over the `max_per_run` cap.
    pub const CAP: &str = "over_max_per_run";
}

/// The rules that decide which mentions go on to `analyze-social` (the `[prefilter]` table
/// of `social.toml`). Every field has a default, so `{}` (or no table) is valid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrefilterRules {
    /// Select a mention whose lexicon sentiment score (in [-1, 1]) has at least this absolute
    /// value. Default 0.3. `0` selects every scored mention; more than `1` turns the rule off.
    pub min_abs_score: f32,
    /// Select a mention that names a catalog product (the analysis has a `product` entity).
    /// Default true.
    pub products: bool,
    /// Select a mention that names a brand (the analysis has a `brand` entity). Default
    /// false: the query usually is the brand, so every mention would be selected.
    pub brands: bool,
    /// Select a mention containing one of these, case-insensitively, as whole words or
    /// phrases (`refund` matches "Refund!" and "#refund" but not "refunded").
    pub keywords: Vec<String>,
    /// Never select a mention containing one of these (same matching as `keywords`): e.g.
    /// `giveaway`, or the name of an unrelated company with the same name.
    pub exclude_keywords: Vec<String>,
    /// When not empty, only mentions in these languages (ISO 639-1 codes such as `en`) can
    /// be selected; a mention with no detected language cannot.
    pub languages: Vec<String>,
    /// Select a mention whose likes + reposts + replies reach this (counts a platform does
    /// not report count as 0). Default: no engagement rule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_engagement: Option<u64>,
    /// Select at most this many mentions per pass (per source and run), the ones with the
    /// strongest |sentiment| first. Default: no cap.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_per_run: Option<usize>,
}

impl Default for PrefilterRules {
    fn default() -> Self {
        PrefilterRules {
            min_abs_score: 0.3,
            products: true,
            brands: false,
            keywords: Vec::new(),
            exclude_keywords: Vec::new(),
            languages: Vec::new(),
            min_engagement: None,
            max_per_run: None,
        }
    }
}

impl PrefilterRules {
    /// Checks the rules; errors name the field under `prefix` (e.g. `prefilter.keywords[1]`).
    pub fn validate(&self, prefix: &str) -> Result<(), SocialError> {
        let err = |field: String, msg: String| Err(SocialError::Config(format!("{prefix}.{field}: {msg}")));
        if !self.min_abs_score.is_finite() || self.min_abs_score < 0.0 {
            return err(
                "min_abs_score".into(),
                format!("must be a number ≥ 0 (got {})", self.min_abs_score),
            );
        }
        for (field, list) in [
            ("keywords", &self.keywords),
            ("exclude_keywords", &self.exclude_keywords),
        ] {
            for (i, k) in list.iter().enumerate() {
                if k.trim().is_empty() {
                    return err(format!("{field}[{i}]"), "must not be blank".into());
                }
            }
        }
        for (i, lang) in self.languages.iter().enumerate() {
            let ok = (2..=3).contains(&lang.len()) && lang.bytes().all(|b| b.is_ascii_alphabetic());
            if !ok {
                return err(
                    format!("languages[{i}]"),
                    format!("{lang:?} is not an ISO 639 language code such as \"en\""),
                );
            }
        }
        if self.max_per_run == Some(0) {
            return err(
                "max_per_run".into(),
                "must be at least 1 (leave it out for no cap)".into(),
            );
        }
        Ok(())
    }
}

/// What [`decide`] says of one mention.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    /// True when the mention goes on to `analyze-social` (before [`apply_cap`]).
    pub selected: bool,
    /// Why: the rules that selected it (in the order of the [`reason`] constants), or the one
    /// reason it was not selected.
    pub reasons: Vec<&'static str>,
    /// The sentiment score the decision used (the analysis', else the mention's
    /// `lexicon_score`); [`apply_cap`] ranks by its absolute value.
    pub score: Option<f32>,
}

impl Decision {
    fn rejected(reason: &'static str, score: Option<f32>) -> Self {
        Decision {
            selected: false,
            reasons: vec![reason],
            score,
        }
    }
}

/// Applies the rules to one mention and its lexicon-tier analysis (see the module docs).
pub fn decide(rules: &PrefilterRules, mention: &SocialMention, analysis: &TextAnalysis) -> Decision {
    let score = analysis
        .sentiment
        .as_ref()
        .map(|s| s.score)
        .or(mention.lexicon_score)
        .filter(|s| s.is_finite());
    let text = mention.text.to_lowercase();
    if rules.exclude_keywords.iter().any(|k| contains_phrase(&text, k)) {
        return Decision::rejected(reason::EXCLUDED, score);
    }
    if !rules.languages.is_empty() {
        let language = analysis.language.as_deref().or(mention.language.as_deref());
        let allowed = language.is_some_and(|l| {
            // "en-US" counts as "en".
            let primary = l.split(['-', '_']).next().unwrap_or(l);
            rules.languages.iter().any(|a| a.eq_ignore_ascii_case(primary))
        });
        if !allowed {
            return Decision::rejected(reason::LANGUAGE, score);
        }
    }
    let mut reasons = Vec::new();
    if score.is_some_and(|s| s.abs() >= rules.min_abs_score) {
        reasons.push(reason::SENTIMENT);
    }
    if rules.products && analysis.entities.iter().any(|e| e.kind == "product") {
        reasons.push(reason::PRODUCT);
    }
    if rules.brands && analysis.entities.iter().any(|e| e.kind == "brand") {
        reasons.push(reason::BRAND);
    }
    if rules.keywords.iter().any(|k| contains_phrase(&text, k)) {
        reasons.push(reason::KEYWORD);
    }
    if let Some(min) = rules.min_engagement {
        let e = &mention.engagement;
        let total = [e.likes, e.reposts, e.replies]
            .into_iter()
            .map(|c| c.unwrap_or(0))
            .fold(0u64, u64::saturating_add);
        if total >= min {
            reasons.push(reason::ENGAGEMENT);
        }
    }
    if reasons.is_empty() {
        return Decision::rejected(reason::NO_RULE, score);
    }
    Decision {
        selected: true,
        reasons,
        score,
    }
}

/// Applies `max_per_run` to a pass: which of `decisions` stay selected. Keeps the selected
/// mentions with the strongest |score| (a decision without a score counts as 0; the
/// mention's `lexicon_score` is used when the decision has none), ties going to the earlier
/// one. `mentions` and `decisions` are parallel; the answer has one entry per decision.
///
/// ```
/// use crow_ingest::social::prefilter::{Decision, PrefilterRules, apply_cap};
///
/// let rules = PrefilterRules { max_per_run: Some(1), ..PrefilterRules::default() };
/// let d = |selected, score| Decision { selected, reasons: vec![], score: Some(score) };
/// let decisions = [d(true, 0.4), d(true, -0.9), d(false, 1.0)];
/// assert_eq!(apply_cap(&rules, &[], &decisions), vec![false, true, false]);
/// ```
pub fn apply_cap(rules: &PrefilterRules, mentions: &[SocialMention], decisions: &[Decision]) -> Vec<bool> {
    let mut keep: Vec<bool> = decisions.iter().map(|d| d.selected).collect();
    let Some(max) = rules.max_per_run else {
        return keep;
    };
    let strength = |i: usize| {
        decisions[i]
            .score
            .or_else(|| mentions.get(i).and_then(|m| m.lexicon_score))
            .filter(|s| s.is_finite())
            .map_or(0.0, f32::abs)
    };
    let mut selected: Vec<usize> = (0..decisions.len()).filter(|&i| keep[i]).collect();
    // Stable: equal strengths keep their order.
    selected.sort_by(|&a, &b| strength(b).total_cmp(&strength(a)));
    for &i in selected.iter().skip(max) {
        keep[i] = false;
    }
    keep
}

/// Like [`apply_cap`], but updates the decisions: those over the cap become not selected,
/// with the reason [`reason::CAP`]. Returns how many it dropped.
pub fn cap_decisions(rules: &PrefilterRules, mentions: &[SocialMention], decisions: &mut [Decision]) -> usize {
    let keep = apply_cap(rules, mentions, decisions);
    let mut dropped = 0;
    for (d, k) in decisions.iter_mut().zip(keep) {
        if d.selected && !k {
            d.selected = false;
            d.reasons = vec![reason::CAP];
            dropped += 1;
        }
    }
    dropped
}

/// True when `phrase` occurs in `lower_text` (already lowercased) case-insensitively,
/// between word boundaries: the characters around it are not letters or digits.
fn contains_phrase(lower_text: &str, phrase: &str) -> bool {
    let needle = phrase.trim().to_lowercase();
    if needle.is_empty() {
        return false;
    }
    let mut from = 0;
    while let Some(pos) = lower_text[from..].find(&needle) {
        let start = from + pos;
        let end = start + needle.len();
        let before = lower_text[..start].chars().next_back();
        let after = lower_text[end..].chars().next();
        let boundary = |c: Option<char>| c.is_none_or(|c| !c.is_alphanumeric());
        // A phrase that starts or ends with a symbol (`#acme`, `c++`) needs no boundary there.
        let first_word = needle.chars().next().is_some_and(char::is_alphanumeric);
        let last_word = needle.chars().next_back().is_some_and(char::is_alphanumeric);
        if (!first_word || boundary(before)) && (!last_word || boundary(after)) {
            return true;
        }
        // Step past this match's first character.
        from = start + lower_text[start..].chars().next().map_or(1, char::len_utf8);
    }
    false
}

#[cfg(test)]
mod tests {
    use crow_core::model::Engagement;
    use crow_core::ports::{Entity, Sentiment};

    use super::*;

    fn mention(text: &str) -> SocialMention {
        SocialMention {
            id: "bluesky:1".into(),
            org_id: "acme".into(),
            platform: "bluesky".into(),
            platform_id: "1".into(),
            author: None,
            text: text.into(),
            url: None,
            language: None,
            posted_at: 0,
            fetched_at: 0,
            sentiment: None,
            source: "s".into(),
            query: None,
            engagement: Engagement::default(),
            simhash: None,
            lexicon_score: None,
            selected: false,
            analysis: None,
        }
    }

    fn scored(score: f32) -> TextAnalysis {
        TextAnalysis {
            sentiment: Some(Sentiment {
                label: if score > 0.05 {
                    "positive"
                } else if score < -0.05 {
                    "negative"
                } else {
                    "neutral"
                }
                .into(),
                score,
                tier: "lexicon".into(),
            }),
            ..TextAnalysis::default()
        }
    }

    fn entity(kind: &str) -> Entity {
        Entity {
            kind: kind.into(),
            text: "Acme Buds".into(),
            start: 0,
            end: 9,
            product_id: (kind == "product").then(|| "p1".into()),
            pii: false,
        }
    }

    fn neutral() -> TextAnalysis {
        scored(0.0)
    }

    #[test]
    fn defaults() {
        let rules: PrefilterRules = serde_json::from_str("{}").unwrap();
        assert_eq!(rules, PrefilterRules::default());
        assert_eq!(rules.min_abs_score, 0.3);
        assert!(rules.products && !rules.brands);
        assert!(rules.validate("prefilter").is_ok());
        assert!(serde_json::from_str::<PrefilterRules>(r#"{"keyword": ["x"]}"#).is_err());
    }

    #[test]
    fn sentiment_rule() {
        let rules = PrefilterRules::default();
        let m = mention("The Acme app is terrible");
        let d = decide(&rules, &m, &scored(-0.6));
        assert!(d.selected);
        assert_eq!(d.reasons, vec![reason::SENTIMENT]);
        assert_eq!(d.score, Some(-0.6));
        assert_eq!(decide(&rules, &m, &scored(0.3)).reasons, vec![reason::SENTIMENT]);
        let d = decide(&rules, &m, &scored(0.29));
        assert!(!d.selected);
        assert_eq!(d.reasons, vec![reason::NO_RULE]);
        // Without an analysis sentiment, the mention's lexicon score counts.
        let mut m2 = m.clone();
        m2.lexicon_score = Some(0.8);
        assert!(decide(&rules, &m2, &TextAnalysis::default()).selected);
        // Off when above 1.
        let off = PrefilterRules {
            min_abs_score: 1.5,
            ..PrefilterRules::default()
        };
        assert!(!decide(&off, &m, &scored(-1.0)).selected);
    }

    #[test]
    fn product_and_brand_rules() {
        let m = mention("Acme Buds are fine");
        let mut analysis = neutral();
        analysis.entities = vec![entity("product")];
        let rules = PrefilterRules::default();
        assert_eq!(decide(&rules, &m, &analysis).reasons, vec![reason::PRODUCT]);
        let no_products = PrefilterRules {
            products: false,
            ..PrefilterRules::default()
        };
        assert!(!decide(&no_products, &m, &analysis).selected);

        analysis.entities = vec![entity("brand")];
        assert!(!decide(&rules, &m, &analysis).selected, "brands are off by default");
        let brands = PrefilterRules {
            brands: true,
            ..PrefilterRules::default()
        };
        assert_eq!(decide(&brands, &m, &analysis).reasons, vec![reason::BRAND]);
    }

    #[test]
    fn keyword_rule() {
        let rules = PrefilterRules {
            keywords: vec!["refund".into(), "Customer Service".into(), "#AcmeFail".into()],
            ..PrefilterRules::default()
        };
        for text in [
            "I want a REFUND.",
            "refund",
            "#refund now",
            "Their customer service is slow",
            "lol #acmefail",
        ] {
            assert_eq!(
                decide(&rules, &mention(text), &neutral()).reasons,
                vec![reason::KEYWORD],
                "{text}"
            );
        }
        for text in ["refunded already", "prefund", "customer services", "acmefail"] {
            assert!(!decide(&rules, &mention(text), &neutral()).selected, "{text}");
        }
    }

    #[test]
    fn exclude_keywords_win() {
        let rules = PrefilterRules {
            keywords: vec!["acme".into()],
            exclude_keywords: vec!["giveaway".into()],
            ..PrefilterRules::default()
        };
        let m = mention("Acme Buds GIVEAWAY! Follow to enter");
        let d = decide(&rules, &m, &scored(0.9));
        assert!(!d.selected);
        assert_eq!(d.reasons, vec![reason::EXCLUDED]);
        assert_eq!(d.score, Some(0.9));
    }

    #[test]
    fn language_rule() {
        let rules = PrefilterRules {
            languages: vec!["en".into(), "DE".into()],
            ..PrefilterRules::default()
        };
        let mut m = mention("Acme ist super");
        let mut analysis = scored(0.9);
        // Unknown language: not selected.
        assert_eq!(decide(&rules, &m, &analysis).reasons, vec![reason::LANGUAGE]);
        // The platform's language, then the analysis'.
        m.language = Some("de".into());
        assert!(decide(&rules, &m, &analysis).selected);
        analysis.language = Some("fr".into());
        assert_eq!(decide(&rules, &m, &analysis).reasons, vec![reason::LANGUAGE]);
        analysis.language = Some("en-GB".into());
        assert!(decide(&rules, &m, &analysis).selected);
    }

    #[test]
    fn engagement_rule() {
        let rules = PrefilterRules {
            min_engagement: Some(100),
            ..PrefilterRules::default()
        };
        let mut m = mention("meh");
        m.engagement = Engagement {
            likes: Some(60),
            reposts: Some(30),
            replies: None,
            score: Some(1000),
        };
        assert!(!decide(&rules, &m, &neutral()).selected, "score does not count");
        m.engagement.replies = Some(10);
        assert_eq!(decide(&rules, &m, &neutral()).reasons, vec![reason::ENGAGEMENT]);
    }

    #[test]
    fn several_reasons() {
        let rules = PrefilterRules {
            keywords: vec!["broken".into()],
            min_engagement: Some(1),
            ..PrefilterRules::default()
        };
        let mut m = mention("My Acme Buds are broken");
        m.engagement.likes = Some(3);
        let mut analysis = scored(-0.7);
        analysis.entities = vec![entity("product")];
        assert_eq!(
            decide(&rules, &m, &analysis).reasons,
            vec![reason::SENTIMENT, reason::PRODUCT, reason::KEYWORD, reason::ENGAGEMENT]
        );
    }

    #[test]
    fn cap_keeps_the_strongest() {
        let rules = PrefilterRules {
            max_per_run: Some(2),
            ..PrefilterRules::default()
        };
        let d = |selected, score: Option<f32>| Decision {
            selected,
            reasons: vec![],
            score,
        };
        let mut decisions = vec![
            d(true, Some(0.5)),
            d(true, None),
            d(false, Some(-1.0)),
            d(true, Some(-0.5)),
            d(true, Some(0.95)),
        ];
        let mut mentions: Vec<SocialMention> = (0..5).map(|_| mention("x")).collect();
        assert_eq!(
            apply_cap(&rules, &mentions, &decisions),
            vec![true, false, false, false, true],
            "0.95 first, then the earlier of the two 0.5s"
        );
        // The mention's lexicon score stands in for a missing decision score.
        mentions[1].lexicon_score = Some(0.99);
        assert_eq!(
            apply_cap(&rules, &mentions, &decisions),
            vec![false, true, false, false, true]
        );
        // No cap: unchanged.
        let none = PrefilterRules::default();
        assert_eq!(
            apply_cap(&none, &mentions, &decisions),
            vec![true, true, false, true, true]
        );
        assert_eq!(cap_decisions(&rules, &mentions, &mut decisions), 2);
        assert_eq!(decisions[0].reasons, vec![reason::CAP]);
        assert!(!decisions[3].selected);
    }

    #[test]
    fn validation() {
        let bad = |rules: PrefilterRules, want: &str| {
            let err = rules.validate("prefilter").unwrap_err().to_string();
            assert!(err.contains(want), "{err}");
        };
        bad(
            PrefilterRules {
                min_abs_score: -0.1,
                ..PrefilterRules::default()
            },
            "prefilter.min_abs_score: must be a number ≥ 0",
        );
        bad(
            PrefilterRules {
                keywords: vec!["ok".into(), " ".into()],
                ..PrefilterRules::default()
            },
            "prefilter.keywords[1]: must not be blank",
        );
        bad(
            PrefilterRules {
                languages: vec!["english".into()],
                ..PrefilterRules::default()
            },
            "prefilter.languages[0]: \"english\" is not an ISO 639 language code",
        );
        bad(
            PrefilterRules {
                max_per_run: Some(0),
                ..PrefilterRules::default()
            },
            "prefilter.max_per_run: must be at least 1",
        );
    }
}
