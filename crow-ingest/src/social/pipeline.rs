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
    /// Per org: when the index was loaded, and the index.
    indexes: HashMap<String, (Millis, NearDupIndex)>,
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
        let mut out = self
            .process_run(social, accounts, lexicon, vec![(from, posts)], now)
            .await?;
        out.pop().unwrap_or_else(|| Ok(PassReport::default()))
    }

    /// Processes one run's posts from several sources of one org. Near duplicates are found
    /// across all of them in time order, so the original of a cross-post is the earliest post
    /// whichever source it came from; each source still gets its own report (an error in one
    /// source's storing does not stop the others). Fails as a whole only when the org does not
    /// exist or the stored index cannot be loaded.
    pub async fn process_run(
        &mut self,
        social: &dyn SocialStore,
        accounts: &dyn AccountStore,
        lexicon: &dyn TextAnalyzer,
        passes: Vec<(PassSource<'_>, Vec<RawMention>)>,
        now: Millis,
    ) -> Result<Vec<Result<PassReport, SocialError>>, SocialError> {
        let Some((first, _)) = passes.first() else {
            return Ok(Vec::new());
        };
        let org = first.org_id.to_owned();
        if passes.iter().any(|(p, _)| p.org_id != org) {
            return Err(SocialError::Config("one run covers one org".into()));
        }
        let Some(grant) = accounts.org_grant(&org).await? else {
            return Err(SocialError::Config(format!("org {org:?} does not exist")));
        };
        // 1-2. Per source: exact duplicates, then privacy and the SimHash.
        let mut prepared: Vec<(PassSource<'_>, PassReport, Result<Vec<SocialMention>, SocialError>)> = Vec::new();
        for (from, posts) in passes {
            let mut report = PassReport {
                fetched: posts.len(),
                ..PassReport::default()
            };
            let mentions = prepare(social, &grant.pseudonym_key, from, posts, now).await;
            if let Ok(m) = &mentions {
                report.exact_duplicates = report.fetched - m.len();
            }
            prepared.push((from, report, mentions));
        }

        // 3. Near duplicates across the whole run, oldest first, against the stored mentions
        // and the earlier posts of the run.
        let distance = self.config.near_duplicate_distance;
        let index = self.index_for(social, &org, now).await?;
        let mut order: Vec<(usize, usize)> = Vec::new();
        for (p, (_, _, mentions)) in prepared.iter().enumerate() {
            if let Ok(ms) = mentions {
                order.extend((0..ms.len()).map(|i| (p, i)));
            }
        }
        let key = |&(p, i): &(usize, usize)| match &prepared[p].2 {
            Ok(ms) => (ms[i].posted_at, ms[i].id.clone()),
            Err(_) => (0, String::new()),
        };
        order.sort_by_key(key);
        let mut run_index = NearDupIndex::new(distance);
        let mut duplicate_of: Vec<Vec<Option<(String, u32)>>> = prepared
            .iter()
            .map(|(_, _, m)| vec![None; m.as_ref().map_or(0, Vec::len)])
            .collect();
        for (p, i) in order {
            let Ok(ms) = &prepared[p].2 else { continue };
            let m = &ms[i];
            let hash = m.simhash.unwrap_or_default();
            match index.nearest(hash).or_else(|| run_index.nearest(hash)) {
                Some((id, d)) => duplicate_of[p][i] = Some((id.to_owned(), d)),
                None => run_index.insert(m.id.clone(), hash),
            }
        }

        // 4-5. Per source: score, select, store.
        let mut reports = Vec::with_capacity(prepared.len());
        let mut kept_all = Vec::new();
        for ((from, mut report, mentions), dups) in prepared.into_iter().zip(duplicate_of) {
            let mentions = match mentions {
                Ok(m) => m,
                Err(e) => {
                    reports.push(Err(e));
                    continue;
                }
            };
            let mut kept = Vec::new();
            let mut duplicates = Vec::new();
            for (m, dup) in mentions.into_iter().zip(dups) {
                match dup {
                    Some((original_id, distance)) => duplicates.push(MentionDuplicate {
                        id: m.id,
                        original_id,
                        platform: m.platform,
                        url: m.url,
                        distance,
                        fetched_at: now,
                    }),
                    None => kept.push(m),
                }
            }
            match self
                .commit(social, lexicon, from, &mut report, &mut kept, duplicates, now)
                .await
            {
                Ok(()) => {
                    kept_all.extend(kept.into_iter().map(|m| (m.id, m.simhash.unwrap_or_default())));
                    reports.push(Ok(report));
                }
                Err(e) => reports.push(Err(e)),
            }
        }
        if let Some((_, index)) = self.indexes.get_mut(&org) {
            for (id, hash) in kept_all {
                index.insert(id, hash);
            }
        }
        Ok(reports)
    }

    /// Scores the kept mentions with the lexicon tier, selects, and stores mentions, links and
    /// jobs together.
    #[allow(clippy::too_many_arguments)]
    async fn commit(
        &self,
        social: &dyn SocialStore,
        lexicon: &dyn TextAnalyzer,
        from: PassSource<'_>,
        report: &mut PassReport,
        mentions: &mut [SocialMention],
        duplicates: Vec<MentionDuplicate>,
        now: Millis,
    ) -> Result<(), SocialError> {
        let org = from.org_id;
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
        let keep = prefilter::apply_cap(&self.config.prefilter, mentions, &decisions);
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
        if mentions.is_empty() && duplicates.is_empty() {
            return Ok(());
        }
        let outcome = social.store_mentions(org, mentions, &duplicates, jobs, now).await?;
        report.stored = outcome.stored;
        report.near_duplicates = outcome.duplicates;
        report.selected = selected.len();
        report.exact_duplicates += outcome.existing;
        Ok(())
    }

    /// The org's near-duplicate index, loaded from the store on first use and again once a
    /// day, so a long-running process forgets originals older than the window as a fresh one
    /// would.
    async fn index_for(
        &mut self,
        social: &dyn SocialStore,
        org: &str,
        now: Millis,
    ) -> Result<&NearDupIndex, SocialError> {
        let stale = self
            .indexes
            .get(org)
            .is_none_or(|(loaded_at, _)| now - loaded_at >= DAY_MS);
        if stale {
            let since = now - Millis::from(self.config.near_duplicate_window_days) * DAY_MS;
            let mut index = NearDupIndex::new(self.config.near_duplicate_distance);
            for (id, hash) in social.mention_simhashes(org, since).await? {
                index.insert(id, hash);
            }
            self.indexes.insert(org.to_owned(), (now, index));
        }
        Ok(&self.indexes[org].1)
    }
}

/// Drops posts already stored (or repeated), then pseudonymizes authors, scrubs PII from
/// texts and URLs, and computes each SimHash; oldest first.
async fn prepare(
    social: &dyn SocialStore,
    pseudonym_key: &[u8],
    from: PassSource<'_>,
    posts: Vec<RawMention>,
    now: Millis,
) -> Result<Vec<SocialMention>, SocialError> {
    let org = from.org_id;
    let mut seen = HashSet::new();
    let mut posts: Vec<RawMention> = posts
        .into_iter()
        .filter(|p| seen.insert(p.platform_id.clone()))
        .collect();
    // Platform ids that name their author (Bluesky's `at://did:plc:…/…`) get the DID replaced
    // by its keyed pseudonym: still unique and stable, no longer an identifier of a person.
    for p in &mut posts {
        p.platform_id = pseudonymize_dids(pseudonym_key, &p.platform_id);
    }
    let ids: Vec<String> = posts
        .iter()
        .map(|p| mention_id(from.platform, &p.platform_id))
        .collect();
    let known: HashSet<String> = social.known_mentions(org, &ids).await?.into_iter().collect();
    posts.retain(|p| !known.contains(&mention_id(from.platform, &p.platform_id)));
    posts.sort_by(|a, b| a.posted_at.cmp(&b.posted_at).then(a.platform_id.cmp(&b.platform_id)));
    let scrubber = crow_core::privacy::Scrubber::global();
    Ok(posts
        .into_iter()
        .map(|p| {
            let text = scrubber.scrub_text(&p.text).map_or(p.text, |(s, _)| s);
            // A permalink that names the author would undo the pseudonym: it is not kept.
            let url = p
                .url
                .filter(|u| !names_author(u, p.author.as_deref()))
                .map(|u| scrubber.scrub_url(&u).map_or(u, |(s, _)| s));
            let author = p
                .author
                .filter(|a| !a.is_empty())
                .map(|a| crow_core::privacy::pseudonymize(pseudonym_key, &format!("{}:{a}", from.platform)));
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
        .collect())
}

/// Replaces every DID (`did:method:id`, up to the next `/`) in `id` with its keyed pseudonym.
fn pseudonymize_dids(key: &[u8], id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    let mut rest = id;
    while let Some(at) = rest.find("did:") {
        out.push_str(&rest[..at]);
        let end = rest[at..].find('/').map_or(rest.len(), |e| at + e);
        out.push_str(&crow_core::privacy::pseudonymize(key, &rest[at..end]));
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// True when `url` contains the author's handle (or its local part, for `user@host`
/// handles), case-insensitively.
fn names_author(url: &str, author: Option<&str>) -> bool {
    let Some(author) = author.map(|a| a.trim_start_matches('@')).filter(|a| a.len() >= 2) else {
        return false;
    };
    let url = url.to_lowercase();
    let local = author.split('@').next().unwrap_or(author);
    url.contains(&author.to_lowercase()) || (local.len() >= 2 && url.contains(&format!("@{}", local.to_lowercase())))
}

/// CROW's id of a post: `platform:platform_id`.
pub fn mention_id(platform: Platform, platform_id: &str) -> String {
    format!("{}:{platform_id}", platform.as_str())
}
