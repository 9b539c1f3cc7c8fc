//! Text analysis and frame analysis off the async worker threads.

use crow_core::ports::{Embedder, TextAnalysis, TextAnalyzer};
use crow_nlp::Analyzer;

/// The [`Analyzer`] as ports whose CPU-bound work (inference, matching) runs under
/// `tokio::task::block_in_place`, so the runtime keeps serving requests on its other threads while
/// a batch of texts is embedded. On a current-thread runtime the work runs inline.
#[derive(Debug, Clone, Copy)]
pub struct Blocking<'a>(pub &'a Analyzer);

fn off_the_runtime<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

#[async_trait::async_trait]
impl TextAnalyzer for Blocking<'_> {
    async fn analyze(&self, org_id: &str, texts: &[String]) -> crow_core::Result<Vec<TextAnalysis>> {
        let gazetteer = self.0.gazetteer(org_id).await?;
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        Ok(off_the_runtime(|| self.0.analyze_texts(&gazetteer, &refs))?)
    }
}

#[async_trait::async_trait]
impl Embedder for Blocking<'_> {
    fn dim(&self) -> usize {
        self.0.embedding_dim().unwrap_or(0)
    }

    async fn embed(&self, texts: &[String]) -> crow_core::Result<Vec<Vec<f32>>> {
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        match off_the_runtime(|| self.0.embed_texts(&refs)) {
            Some(vectors) => Ok(vectors?),
            None => Err(crow_core::Error::Unavailable(
                "no embedding model is loaded (run `make models`)".into(),
            )),
        }
    }
}

/// crow-vision's detectors as a [`FrameAnalyzer`](crow_core::ports::FrameAnalyzer) whose
/// inference runs under `tokio::task::block_in_place`: cameras in the server do not starve the
/// runtime's other tasks (HTTP requests, the worker) while a frame is analyzed.
#[derive(Debug)]
pub struct BlockingDetectors(pub crow_vision::detect::Detectors);

#[async_trait::async_trait]
impl crow_core::ports::FrameAnalyzer for BlockingDetectors {
    async fn analyze(&self, frame: &crow_core::ports::Frame) -> crow_core::Result<crow_core::ports::FrameAnalysis> {
        Ok(off_the_runtime(|| self.0.detect(frame))?)
    }
}
