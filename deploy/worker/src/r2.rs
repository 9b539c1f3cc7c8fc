//! R2 as the [`BlobStore`](crow_core::ports::BlobStore) port (the `BLOBS` bucket binding).

#[cfg(target_arch = "wasm32")]
mod bucket {
    use crow_core::ports::BlobStore;
    use crow_core::{Error, Result};
    use wasm_bindgen::prelude::*;

    use crate::glue;

    /// An R2 bucket binding (`env.BLOBS`).
    #[derive(Debug, Clone)]
    pub struct R2(pub JsValue);

    async fn call(what: &str, key: &str, promise: std::result::Result<js_sys::Promise, JsValue>) -> Result<JsValue> {
        match promise {
            Ok(p) => wasm_bindgen_futures::JsFuture::from(p).await,
            Err(e) => Err(e),
        }
        .map_err(|e| Error::backend(format!("R2 {what} {key}: {}", glue::error_message(&e))))
    }

    fn check_key(key: &str) -> Result<()> {
        if key.is_empty() || key.starts_with('/') || key.split('/').any(|s| s == "..") {
            return Err(Error::invalid("key", format!("`{key}` is not a relative object key")));
        }
        Ok(())
    }

    #[async_trait::async_trait(?Send)]
    impl BlobStore for R2 {
        async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<()> {
            check_key(key)?;
            call("put", key, glue::r2_put(&self.0, key, &bytes)).await.map(drop)
        }

        async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
            check_key(key)?;
            let v = call("get", key, glue::r2_get(&self.0, key)).await?;
            if v.is_null() || v.is_undefined() {
                return Ok(None);
            }
            Ok(Some(js_sys::Uint8Array::new(&v).to_vec()))
        }

        async fn list(&self, prefix: &str) -> Result<Vec<String>> {
            let v = call("list", prefix, glue::r2_list(&self.0, prefix)).await?;
            let text = v.as_string().unwrap_or_default();
            let mut keys: Vec<String> =
                serde_json::from_str(&text).map_err(|e| Error::backend(format!("R2 list {prefix}: {e}")))?;
            keys.sort();
            Ok(keys)
        }

        async fn delete(&self, key: &str) -> Result<()> {
            check_key(key)?;
            call("delete", key, glue::r2_delete(&self.0, key)).await.map(drop)
        }
    }
}

#[cfg(target_arch = "wasm32")]
pub use bucket::R2;
