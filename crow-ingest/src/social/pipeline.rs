//! One pass of the social channel over the posts a source returned, through the ports only:
//!
//! 1. **Exact duplicates.** An id (`platform:platform_id`) already stored, as a mention or as a
//!    duplicate link, or seen twice in the pass, is dropped.
//! 2. **Privacy.** The author handle becomes a keyed pseudonym (HMAC with the org's key, so
//!    the same author maps to the same pseudonym within the org and to nothing outside it).
//!    PII is scrubbed from the text and the URL before anything else sees them.
//! 3. **Near duplicates.** A post whose SimHash is within the configured Hamming distance of a
//!    stored mention's (reposts, copy-pasted spam, the same post cross-posted to two platforms)
//!    is stored as a link to that original, not as a second mention. Posts are taken oldest
//!    first, so the original is the earliest post.
//! 4. **Score and select.** The lexicon tier (a [`TextAnalyzer`], cheap) scores every new
//!    mention; the [`PrefilterRules`] decide which ones go on to the costly `analyze-social`
//!    workflow (model sentiment, entities, embeddings).
//! 5. **Store.** Mentions, links and the `analyze-social` jobs commit together
//!    ([`SocialStore::store_mentions`]), so a crash never leaves a selected mention without its
//!    job, and a re-run stores nothing twice.
//!
//! The near-duplicate index lives in the [`Pipeline`] and is rebuilt per org from the store
//! ([`SocialStore::mention_simhashes`], the last `near_duplicate_window_days`) on first use.

use std::collections::{HashMap, HashSet};

use crow_core::model::{MentionDuplicate, Millis, SocialMention};
use crow_core::ports::{AccountStore, NewJob, SocialStore, TextAnalysis, TextAnalyzer, queues};
use serde::{Deserialize, Serialize};

use super::prefilter::{self, PrefilterRules};
use super::simhash::{self, NearDupIndex};
use super::{Platform, RawMention, SocialError};
use crate::jobs::{ANALYZE_SOCIAL, MentionBatch};

/// Mentions per `analyze-social` job.
pub const MENTIONS_PER_JOB: usize = 32;

const DAY_MS: Millis = 86_400_000;

/// What the pipeline needs to know besides the posts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PipelineConfig {
    /// Near-duplicate threshold (Hamming distance between SimHashes, at most 3).
    pub near_duplicate_distance: u32,
    /// How far back stored mentions count as originals, in days.
    pub near_duplicate_window_days: u32,
    /// Which mentions go on to `analyze-social`.
    pub prefilter: PrefilterRules,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            near_duplicate_distance: 3,
            near_duplicate_window_days: 30,
            prefilter: PrefilterRules::default(),
        }
    }
}

/// Where a pass's posts came from.
#[derive(Debug, Clone, Copy)]
pub struct PassSource<'a> {
    /// The org.
    pub org_id: &'a str,
    /// The configured source's name.
    pub source: &'a str,
    /// Its platform.
    pub platform: Platform,
    /// Its query (or feed URL).
    pub query: Option<&'a str>,
}

/// The lexicon tier's sentiment labels over a pass's new mentions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentimentSplit {
    /// `positive`.
    pub positive: usize,
    /// `neutral` (or no sentiment).
    pub neutral: usize,
    /// `negative`.
    pub negative: usize,
}

impl SentimentSplit {
    /// Adds another split.
    pub fn add(&mut self, other: &SentimentSplit) {
        self.positive += other.positive;
        self.neutral += other.neutral;
        self.negative += other.negative;
    }
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PassReport {
    /// Posts handed to the pass.
    pub fetched: usize,
    /// New mentions stored.
    pub stored: usize,
    /// Posts dropped because their id was already stored or repeated in the pass.
    pub exact_duplicates: usize,
    /// Posts stored as links to a near-duplicate original.
    pub near_duplicates: usize,
    /// Mentions the pre-filter sent to `analyze-social`.
    pub selected: usize,
    /// The lexicon tier's split over the stored mentions.
    pub sentiment: SentimentSplit,
}

impl PassReport {
    /// Adds another report.
    pub fn add(&mut self, other: &PassReport) {
        self.fetched += other.fetched;
        self.stored += other.stored;
        self.exact_duplicates += other.exact_duplicates;
        self.near_duplicates += other.near_duplicates;
        self.selected += other.selected;
        self.sentiment.add(&other.sentiment);
    }
}

/// The social channel's processing state: the config and the near-duplicate index per org.
#[derive(Debug)]
pub struct Pipeline {
    config: PipelineConfig,
    indexes: HashMap<String, NearDupIndex>,
}

impl Pipeline {
    /// A pipeline with `config`.
    pub fn new(config: PipelineConfig) -> Self {
        Pipeline {
            config,
            indexes: HashMap::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &PipelineConfig {
        &self.config
    }

    /// Processes one source's posts: dedupe, privacy, score, select, store, enqueue.
    pub async fn process(
        &mut self,
        social: &dyn SocialStore,
        accounts: &dyn AccountStore,
        lexicon: &dyn TextAnalyzer,
        from: PassSource<'_>,
        posts: Vec<RawMention>,
        now: Millis,
    ) -> Result<PassReport, SocialError> {
        let org = from.org_id;
        let mut report = PassReport {
            fetched: posts.len(),
            ..PassReport::default()
        };
        let Some(grant) = accounts.org_grant(org).await? else {
            return Err(SocialError::Config(format!("org {org:?} does not exist")));
        };
        // 1. Exact duplicates: repeated in the pass, or already stored.
        let mut seen = HashSet::new();
        let mut posts: Vec<RawMention> = posts
            .into_iter()
            .filter(|p| seen.insert(p.platform_id.clone()))
            .collect();
        let ids: Vec<String> = posts
            .iter()
            .map(|p| mention_id(from.platform, &p.platform_id))
            .collect();
        let known: HashSet<String> = social.known_mentions(org, &ids).await?.into_iter().collect();
        posts.retain(|p| !known.contains(&mention_id(from.platform, &p.platform_id)));
        report.exact_duplicates = report.fetched - posts.len();
        if posts.is_empty() {
            return Ok(report);
        }
        // Oldest first: the original of a near-duplicate is the earliest post.
        posts.sort_by(|a, b| a.posted_at.cmp(&b.posted_at).then(a.platform_id.cmp(&b.platform_id)));

        // 2. Privacy.
        let scrubber = crow_core::privacy::Scrubber::global();
        let mut mentions: Vec<SocialMention> = posts
            .into_iter()
            .map(|p| {
                let text = scrubber.scrub_text(&p.text).map_or(p.text, |(s, _)| s);
                let url = p.url.map(|u| scrubber.scrub_url(&u).map_or(u, |(s, _)| s));
                let author = p
                    .author
                    .filter(|a| !a.is_empty())
                    .map(|a| crow_core::privacy::pseudonymize(&grant.pseudonym_key, &format!("{}:{a}", from.platform)));
                SocialMention {
                    id: mention_id(from.platform, &p.platform_id),
                    org_id: org.to_owned(),
                    platform: from.platform.as_str().to_owned(),
                    platform_id: p.platform_id,
                    author,
                    simhash: Some(simhash::simhash(&text)),
                    text,
                    url,
                    language: p.language,
                    posted_at: p.posted_at,
                    fetched_at: now,
                    sentiment: None,
                    source: from.source.to_owned(),
                    query: from.query.map(str::to_owned),
                    engagement: p.engagement,
                    lexicon_score: None,
                    selected: false,
                    analysis: None,
                }
            })
            .collect();

        // 3. Near duplicates, against stored mentions and earlier posts of this pass.
        let distance = self.config.near_duplicate_distance;
        let index = self.index_for(social, org, now).await?;
        let mut pass_index = NearDupIndex::new(distance);
        let mut duplicates = Vec::new();
        mentions.retain(|m| {
            let hash = m.simhash.unwrap_or_default();
            let found = index
                .nearest(hash)
                .or_else(|| pass_index.nearest(hash))
                .map(|(id, d)| (id.to_owned(), d));
            match found {
                Some((original_id, distance)) => {
                    duplicates.push(MentionDuplicate {
                        id: m.id.clone(),
                        original_id,
                        platform: m.platform.clone(),
                        url: m.url.clone(),
                        distance,
                        fetched_at: now,
                    });
                    false
                }
                None => {
                    pass_index.insert(m.id.clone(), hash);
                    true
                }
            }
        });

        // 4. Score every new mention with the lexicon tier, then select.
        let texts: Vec<String> = mentions.iter().map(|m| m.text.clone()).collect();
        let analyses = if texts.is_empty() {
            Vec::new()
        } else {
            lexicon.analyze(org, &texts).await?
        };
        let empty = TextAnalysis::default();
        let mut decisions = Vec::with_capacity(mentions.len());
        for (i, m) in mentions.iter_mut().enumerate() {
            let analysis = analyses.get(i).unwrap_or(&empty);
            if let Some(s) = &analysis.sentiment {
                m.lexicon_score = Some(s.score);
            }
            if m.language.is_none() {
                m.language = analysis.language.clone();
            }
            match analysis.sentiment.as_ref().map(|s| s.label.as_str()) {
                Some("positive") => report.sentiment.positive += 1,
                Some("negative") => report.sentiment.negative += 1,
                _ => report.sentiment.neutral += 1,
            }
            decisions.push(prefilter::decide(&self.config.prefilter, m, analysis));
        }
        let keep = prefilter::apply_cap(&self.config.prefilter, &mentions, &decisions);
        for (m, selected) in mentions.iter_mut().zip(keep) {
            m.selected = selected;
        }
        let selected: Vec<String> = mentions.iter().filter(|m| m.selected).map(|m| m.id.clone()).collect();
        let jobs: Vec<NewJob> = selected
            .chunks(MENTIONS_PER_JOB)
            .map(|chunk| NewJob {
                queue: queues::SOCIAL.to_owned(),
                kind: ANALYZE_SOCIAL.to_owned(),
                payload: serde_json::to_value(MentionBatch {
                    org_id: org.to_owned(),
                    mention_ids: chunk.to_vec(),
                })
                .unwrap_or_default(),
                not_before: None,
            })
            .collect();

        // 5. Store mentions, links and jobs together.
        let outcome = social.store_mentions(org, &mentions, &duplicates, jobs, now).await?;
        report.stored = outcome.stored;
        report.near_duplicates = outcome.duplicates;
        report.selected = selected.len();
        report.exact_duplicates += outcome.existing;
        let index = self
            .indexes
            .entry(org.to_owned())
            .or_insert_with(|| NearDupIndex::new(distance));
        for m in &mentions {
            index.insert(m.id.clone(), m.simhash.unwrap_or_default());
        }
        Ok(report)
    }

    /// The org's near-duplicate index, loaded from the store on first use.
    async fn index_for(
        &mut self,
        social: &dyn SocialStore,
        org: &str,
        now: Millis,
    ) -> Result<&NearDupIndex, SocialError> {
        if !self.indexes.contains_key(org) {
            let since = now - Millis::from(self.config.near_duplicate_window_days) * DAY_MS;
            let mut index = NearDupIndex::new(self.config.near_duplicate_distance);
            for (id, hash) in social.mention_simhashes(org, since).await? {
                index.insert(id, hash);
            }
            self.indexes.insert(org.to_owned(), index);
        }
        Ok(&self.indexes[org])
    }
}

/// CROW's id of a post: `platform:platform_id`.
pub fn mention_id(platform: Platform, platform_id: &str) -> String {
    format!("{}:{platform_id}", platform.as_str())
}
