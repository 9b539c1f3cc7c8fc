//! `analyze-social`: the costly analysis of the mentions the social pre-filter selected — model
//! sentiment, entities and language through the [`TextAnalyzer`] port, embeddings into the
//! `social-embeddings` index — recorded on each mention with
//! [`SocialStore::set_mention_analysis`].
//!
//! Idempotent: a re-run (after a crash, or a retried job) analyzes the same texts again and
//! overwrites the same results and vector records, so no step log is needed. Entities marked
//! `pii` are kept without their text, as for interactions.

use crow_core::model::Millis;
use crow_core::ports::{Embedder, SocialStore, TextAnalyzer};
use crow_core::vector::IndexKind;
use crow_core::{Error, Result};
use serde::{Deserialize, Serialize};

use crate::jobs::MentionBatch;
use crate::search::{self, Indexes};

/// Texts analyzed per call to the analyzer and the embedder.
const CHUNK: usize = 32;

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SocialOutcome {
    /// Mentions analyzed.
    pub analyzed: usize,
    /// Mentions whose id was not found (deleted since the job was queued), skipped.
    pub missing: usize,
    /// Vector records written to `social-embeddings`.
    pub indexed: usize,
}

/// Runs `analyze-social` over a batch of stored mentions.
pub async fn analyze_social(
    social: &dyn SocialStore,
    analyzer: &dyn TextAnalyzer,
    embedder: Option<&dyn Embedder>,
    indexes: Option<&Indexes>,
    batch: &MentionBatch,
    _now: Millis,
) -> Result<SocialOutcome> {
    let org = batch.org_id.as_str();
    let mentions = social.get_mentions(org, &batch.mention_ids).await?;
    let mut out = SocialOutcome {
        missing: batch.mention_ids.len() - mentions.len(),
        ..SocialOutcome::default()
    };
    for chunk in mentions.chunks(CHUNK) {
        let texts: Vec<String> = chunk.iter().map(|m| m.text.clone()).collect();
        let analyses = analyzer.analyze(org, &texts).await?;
        let embeddings = match embedder {
            Some(e) => Some(e.embed(&texts).await?),
            None => None,
        };
        if analyses.len() != texts.len() || embeddings.as_ref().is_some_and(|v| v.len() != texts.len()) {
            return Err(Error::Backend(
                "the text analyzer or embedder returned the wrong number of results".into(),
            ));
        }
        let mut records = Vec::new();
        let mut embeddings = embeddings.map(Vec::into_iter);
        for (m, mut analysis) in chunk.iter().zip(analyses) {
            for entity in analysis.entities.iter_mut().filter(|x| x.pii) {
                entity.text.clear();
            }
            let sentiment = analysis.sentiment.as_ref().map(|s| s.score);
            let value = serde_json::to_value(&analysis).map_err(|e| Error::Backend(e.to_string()))?;
            social.set_mention_analysis(org, &m.id, sentiment, &value).await?;
            if let Some(v) = embeddings.as_mut().and_then(Iterator::next) {
                records.push(search::social_record(m, Some(&analysis), v));
            }
            out.analyzed += 1;
        }
        if let Some(indexes) = indexes
            && !records.is_empty()
        {
            out.indexed += records.len();
            indexes.get(IndexKind::Social).upsert(org, records).await?;
        }
    }
    Ok(out)
}
