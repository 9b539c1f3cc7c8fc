//! [`Analyzer`]: sentiment, entities, language and key phrases behind one
//! [`TextAnalyzer`](crow_core::ports::TextAnalyzer).
//!
//! It runs the model tier (embeddings + a trained sentiment head, feature `onnx`) when its files
//! are present and the lexicon tier otherwise; entities come from the org's catalog gazetteer
//! (when a [`CatalogStore`] is attached), the patterns, and an optional NER model.
//!
//! ```
//! use crow_nlp::Analyzer;
//! use crow_nlp::entities::Gazetteer;
//!
//! let analyzer = Analyzer::lexicon();
//! let out = analyzer.analyze_texts(&Gazetteer::default(), &["Refund of $25 still missing, not happy!"]).unwrap();
//! let a = &out[0];
//! assert_eq!(a.sentiment.as_ref().unwrap().label, "negative");
//! assert_eq!(a.sentiment.as_ref().unwrap().tier, "lexicon");
//! assert!(a.entities.iter().any(|e| e.kind == "money" && e.text == "$25"));
//! ```

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use crow_core::ports::{CatalogStore, Entity, TextAnalysis, TextAnalyzer};

use crate::entities::{Gazetteer, Term, find_patterns, merge};
use crate::error::Result;
use crate::lang::{detect_language, key_phrases};
use crate::lexicon::Vader;

/// Texts longer than this many bytes are cut (at a character boundary) before analysis.
pub const MAX_TEXT_BYTES: usize = 1 << 20;
/// Key phrases returned per text (English texts, and texts whose language is unknown).
pub const KEY_PHRASES: usize = 5;

/// Sentiment, entities, language and key phrases of texts.
pub struct Analyzer {
    catalog: Option<Arc<dyn CatalogStore>>,
    gazetteers: Mutex<HashMap<String, (String, Arc<Gazetteer>)>>,
    #[cfg(feature = "onnx")]
    model: Option<model::ModelTier>,
}

impl std::fmt::Debug for Analyzer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Analyzer")
            .field("tier", &self.tier())
            .field("catalog", &self.catalog.is_some())
            .finish()
    }
}

impl Analyzer {
    /// The lexicon tier only: no model files needed (this is what runs in the Worker).
    pub fn lexicon() -> Self {
        Analyzer {
            catalog: None,
            gazetteers: Mutex::new(HashMap::new()),
            #[cfg(feature = "onnx")]
            model: None,
        }
    }

    /// Matches each org's catalog (products, brands, competitors) in its texts.
    pub fn with_catalog(mut self, catalog: Arc<dyn CatalogStore>) -> Self {
        self.catalog = Some(catalog);
        self
    }

    /// `model` when the model tier runs, else `lexicon`.
    pub fn tier(&self) -> &'static str {
        #[cfg(feature = "onnx")]
        if self.model.is_some() {
            return "model";
        }
        "lexicon"
    }

    /// The gazetteer of an org's catalog, rebuilt when the catalog changed.
    pub async fn gazetteer(&self, org_id: &str) -> Result<Arc<Gazetteer>> {
        let Some(catalog) = &self.catalog else {
            return Ok(Arc::new(Gazetteer::default()));
        };
        let version = catalog.catalog_version(org_id).await.map_err(backend)?;
        if let Some((v, g)) = self.gazetteers.lock().unwrap_or_else(|p| p.into_inner()).get(org_id)
            && *v == version
        {
            return Ok(g.clone());
        }
        let mut terms = Vec::new();
        let mut brands = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = catalog
                .list_products(org_id, 1000, cursor.as_deref())
                .await
                .map_err(backend)?;
            for p in &page.data {
                terms.push(Term {
                    text: p.name.clone(),
                    kind: "product".into(),
                    product_id: Some(p.id.clone()),
                });
                if let Some(b) = p.brand.as_ref().filter(|b| !b.trim().is_empty()) {
                    brands.push(b.clone());
                }
            }
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        brands.sort();
        brands.dedup();
        terms.extend(brands.into_iter().map(|b| Term {
            text: b,
            kind: "brand".into(),
            product_id: None,
        }));
        for t in catalog.list_terms(org_id).await.map_err(backend)? {
            terms.push(Term {
                text: t.name,
                kind: t.kind,
                product_id: None,
            });
        }
        let g = Arc::new(Gazetteer::new(terms));
        self.gazetteers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(org_id.to_owned(), (version, g.clone()));
        Ok(g)
    }

    /// Analyzes texts against a gazetteer: one result per text, in order.
    ///
    /// Texts longer than [`MAX_TEXT_BYTES`] are cut first; the model tier further truncates to
    /// the embedding model's token limit. An empty text gives a neutral result.
    pub fn analyze_texts(&self, gazetteer: &Gazetteer, texts: &[&str]) -> Result<Vec<TextAnalysis>> {
        let texts: Vec<&str> = texts.iter().map(|t| cut(t, MAX_TEXT_BYTES)).collect();
        #[cfg(feature = "onnx")]
        let model_sentiments = match &self.model {
            Some(m) => Some(m.sentiments(&texts)?),
            None => None,
        };
        #[cfg(feature = "onnx")]
        let ner = match &self.model {
            Some(m) => m.entities(&texts)?,
            None => None,
        };
        let vader = Vader::global();
        let mut out = Vec::with_capacity(texts.len());
        for (i, text) in texts.iter().enumerate() {
            #[allow(unused_mut)]
            let mut sentiment = vader.sentiment(text);
            #[cfg(feature = "onnx")]
            if let Some(s) = model_sentiments.as_ref().and_then(|m| m[i].clone()) {
                sentiment = s;
            }
            #[allow(unused_mut)]
            let mut lists: Vec<Vec<Entity>> = vec![gazetteer.find(text), find_patterns(text)];
            #[cfg(feature = "onnx")]
            if let Some(n) = &ner {
                lists.push(n[i].clone());
            }
            let _ = i;
            let language = detect_language(text);
            // RAKE splits at English stop words: other languages get no key phrases.
            let phrases = match language.as_deref() {
                None | Some("en") => key_phrases(text, KEY_PHRASES),
                Some(_) => Vec::new(),
            };
            out.push(TextAnalysis {
                language,
                sentiment: Some(sentiment),
                entities: merge(lists),
                key_phrases: phrases,
            });
        }
        Ok(out)
    }
}

use crate::prefix as cut;

fn backend(e: crow_core::Error) -> crate::NlpError {
    crate::NlpError::Runtime(format!("reading the catalog: {e}"))
}

#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
impl TextAnalyzer for Analyzer {
    async fn analyze(&self, org_id: &str, texts: &[String]) -> crow_core::Result<Vec<TextAnalysis>> {
        let gazetteer = self.gazetteer(org_id).await?;
        let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
        Ok(self.analyze_texts(&gazetteer, &texts)?)
    }
}

/// Sentiment counts and the most mentioned entities of a set of analyses (a report's
/// "what customers said" section).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TextSummary {
    /// Analyses summarized.
    pub texts: usize,
    /// The tier of the last sentiment seen (`model` or `lexicon`).
    pub tier: Option<String>,
    /// Texts labelled positive.
    pub positive: usize,
    /// Texts labelled neutral (or without sentiment).
    pub neutral: usize,
    /// Texts labelled negative.
    pub negative: usize,
    /// `(kind, text, mentions)`, most mentioned first, ties by text.
    pub top_entities: Vec<(String, String, usize)>,
}

/// Summarizes analyses: sentiment counts and the `top` most mentioned entities of the given
/// kinds (all kinds when `kinds` is empty; PII entities never, their text is not kept).
///
/// ```
/// use crow_nlp::Analyzer;
/// use crow_nlp::analyzer::summarize;
/// use crow_nlp::entities::Gazetteer;
///
/// let out = Analyzer::lexicon().analyze_texts(&Gazetteer::default(), &["Great #deal", "awful #deal"]).unwrap();
/// let s = summarize(&out, &["hashtag"], 5);
/// assert_eq!((s.texts, s.positive, s.negative), (2, 1, 1));
/// assert_eq!(s.top_entities, [("hashtag".to_string(), "#deal".to_string(), 2)]);
/// ```
pub fn summarize<'a>(analyses: impl IntoIterator<Item = &'a TextAnalysis>, kinds: &[&str], top: usize) -> TextSummary {
    let mut summary = TextSummary::default();
    let mut counts: HashMap<(&'a str, &'a str), usize> = HashMap::new();
    for a in analyses {
        summary.texts += 1;
        match a.sentiment.as_ref() {
            Some(s) => {
                summary.tier = Some(s.tier.clone());
                match s.label.as_str() {
                    "positive" => summary.positive += 1,
                    "negative" => summary.negative += 1,
                    _ => summary.neutral += 1,
                }
            }
            None => summary.neutral += 1,
        }
        for e in a.entities.iter().filter(|e| !e.pii) {
            if kinds.is_empty() || kinds.contains(&e.kind.as_str()) {
                *counts.entry((e.kind.as_str(), e.text.as_str())).or_default() += 1;
            }
        }
    }
    let mut entities: Vec<(String, String, usize)> = counts
        .into_iter()
        .map(|((k, t), n)| (k.to_owned(), t.to_owned(), n))
        .collect();
    entities.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.1.cmp(&b.1)));
    entities.truncate(top);
    summary.top_entities = entities;
    summary
}

/// A small cache of recent embeddings, so analyzing and then embedding the same texts (as the
/// `process-interaction` workflow does) runs the model once.
#[derive(Debug, Default)]
#[cfg_attr(not(feature = "onnx"), allow(dead_code))]
pub(crate) struct EmbeddingCache {
    map: HashMap<String, Arc<Vec<f32>>>,
    order: VecDeque<String>,
}

#[cfg_attr(not(feature = "onnx"), allow(dead_code))]
impl EmbeddingCache {
    const CAPACITY: usize = 4096;

    pub(crate) fn get(&self, text: &str) -> Option<Arc<Vec<f32>>> {
        self.map.get(text).cloned()
    }

    pub(crate) fn put(&mut self, text: &str, v: Arc<Vec<f32>>) {
        if text.len() > 4096 || self.map.contains_key(text) {
            return;
        }
        if self.order.len() >= Self::CAPACITY
            && let Some(old) = self.order.pop_front()
        {
            self.map.remove(&old);
        }
        self.order.push_back(text.to_owned());
        self.map.insert(text.to_owned(), v);
    }
}

#[cfg(feature = "onnx")]
mod model {
    use std::sync::{Arc, Mutex};

    use crow_core::ports::{Entity, Sentiment};

    use super::{Analyzer, EmbeddingCache};
    use crate::config::NlpConfig;
    use crate::error::{NlpError, Result};
    use crate::head::Head;
    use crate::onnx::{EmbedderOptions, OnnxEmbedder, TokenClassifier};

    /// The model tier: embedder, sentiment head, optional NER model.
    pub(crate) struct ModelTier {
        pub(crate) embedder: OnnxEmbedder,
        pub(crate) head: Head,
        pub(crate) ner: Option<TokenClassifier>,
        pub(crate) cache: Mutex<EmbeddingCache>,
    }

    impl ModelTier {
        pub(crate) fn load(config: &NlpConfig) -> Result<Self> {
            let lib = config.onnxruntime_path();
            let dir = config.embedder_path();
            let embedder = OnnxEmbedder::load(
                &lib,
                &dir,
                EmbedderOptions {
                    sessions: config.sessions,
                    intra_threads: config.intra_threads,
                    batch_size: config.batch_size.max(1),
                    max_tokens: config.max_tokens.max(8),
                },
            )?;
            let head_path = config.sentiment_head_path();
            let head = Head::load(&head_path)?;
            if !head.is_sentiment() {
                return Err(NlpError::Model {
                    path: head_path,
                    reason: format!("the head `{}` has no positive and negative labels", head.task),
                });
            }
            if head.embedding_dim != embedder.dim() {
                return Err(NlpError::Model {
                    path: head_path,
                    reason: format!(
                        "trained on {}-dimensional embeddings, but {} gives {}",
                        head.embedding_dim,
                        dir.display(),
                        embedder.dim()
                    ),
                });
            }
            let ner = match &config.ner {
                Some(ner_dir) => Some(TokenClassifier::load(&lib, ner_dir)?),
                None => None,
            };
            Ok(ModelTier {
                embedder,
                head,
                ner,
                cache: Mutex::new(EmbeddingCache::default()),
            })
        }

        /// Embeddings of texts, through the cache.
        pub(crate) fn embed(&self, texts: &[&str]) -> Result<Vec<Arc<Vec<f32>>>> {
            let mut out: Vec<Option<Arc<Vec<f32>>>> = {
                let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
                texts.iter().map(|t| cache.get(t)).collect()
            };
            let missing: Vec<usize> = (0..texts.len()).filter(|&i| out[i].is_none()).collect();
            if !missing.is_empty() {
                let batch: Vec<&str> = missing.iter().map(|&i| texts[i]).collect();
                let vectors = self.embedder.embed(&batch)?;
                let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
                for (&i, v) in missing.iter().zip(vectors) {
                    let v = Arc::new(v);
                    cache.put(texts[i], v.clone());
                    out[i] = Some(v);
                }
            }
            Ok(out.into_iter().map(|v| v.expect("filled above")).collect())
        }

        pub(crate) fn sentiments(&self, texts: &[&str]) -> Result<Vec<Option<Sentiment>>> {
            let vectors = self.embed(texts)?;
            vectors
                .iter()
                .zip(texts)
                .map(|(v, t)| {
                    if t.trim().is_empty() {
                        return Ok(None); // the lexicon tier's neutral zero
                    }
                    let p = self.head.predict_text(v, t)?;
                    Ok(self.head.sentiment(&p))
                })
                .collect()
        }

        pub(crate) fn entities(&self, texts: &[&str]) -> Result<Option<Vec<Vec<Entity>>>> {
            match &self.ner {
                Some(ner) => Ok(Some(ner.find_batch(texts)?)),
                None => Ok(None),
            }
        }
    }

    impl Analyzer {
        /// The model tier from `config`: an error when any of its files is missing or unusable.
        pub fn load(config: &NlpConfig) -> Result<Self> {
            let mut a = Analyzer::lexicon();
            a.model = Some(ModelTier::load(config)?);
            Ok(a)
        }

        /// The model tier when `config` allows it and its files load, else the lexicon tier and
        /// the reason it fell back (`None` when the model tier is running or was switched off).
        pub fn from_config(config: &NlpConfig) -> (Self, Option<NlpError>) {
            if !config.use_models {
                return (Analyzer::lexicon(), None);
            }
            match Analyzer::load(config) {
                Ok(a) => (a, None),
                Err(e) => (Analyzer::lexicon(), Some(e)),
            }
        }

        /// The embedding model's vector length, when the model tier runs.
        pub fn embedding_dim(&self) -> Option<usize> {
            self.model.as_ref().map(|m| m.embedder.dim())
        }

        /// Embeds texts with the model tier (through its cache), or `None` without models.
        pub fn embed_texts(&self, texts: &[&str]) -> Option<Result<Vec<Vec<f32>>>> {
            let m = self.model.as_ref()?;
            Some(
                m.embed(texts)
                    .map(|v| v.into_iter().map(|v| v.as_ref().clone()).collect()),
            )
        }

        /// The sentiment head in use, when the model tier runs.
        pub fn sentiment_head(&self) -> Option<&Head> {
            self.model.as_ref().map(|m| &m.head)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_respects_char_boundaries() {
        assert_eq!(cut("héllo", 2), "h");
        assert_eq!(cut("héllo", 3), "hé");
        assert_eq!(cut("abc", 10), "abc");
    }

    #[test]
    fn the_cache_is_bounded() {
        let mut c = EmbeddingCache::default();
        for i in 0..EmbeddingCache::CAPACITY + 10 {
            c.put(&i.to_string(), Arc::new(vec![i as f32]));
        }
        assert_eq!(c.map.len(), EmbeddingCache::CAPACITY);
        assert!(c.get("0").is_none());
        assert!(c.get(&(EmbeddingCache::CAPACITY + 9).to_string()).is_some());
    }
}
