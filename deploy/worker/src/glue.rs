//! The JS functions of `js/glue.mjs` the Rust side calls. Values cross as JSON text, byte
//! arrays or plain handles; every async one answers a `Promise`, and a synchronous throw is
//! caught too (`catch`).

use wasm_bindgen::prelude::*;

#[wasm_bindgen(module = "/js/glue.mjs")]
extern "C" {
    /// `db.prepare(sql).bind(...params).raw()` as JSON text (positional arrays).
    #[wasm_bindgen(catch, js_name = d1Query)]
    pub fn d1_query(db: &JsValue, sql: &str, params_json: &str) -> Result<js_sys::Promise, JsValue>;

    /// `db.batch([...])` as JSON text: `[{changes, rows}]`, rows as positional arrays.
    #[wasm_bindgen(catch, js_name = d1Batch)]
    pub fn d1_batch(db: &JsValue, stmts_json: &str) -> Result<js_sys::Promise, JsValue>;

    /// `bucket.put(key, bytes)` (the bytes are copied before the call yields).
    #[wasm_bindgen(catch, js_name = r2Put)]
    pub fn r2_put(bucket: &JsValue, key: &str, bytes: &[u8]) -> Result<js_sys::Promise, JsValue>;

    /// `bucket.get(key)`: a `Uint8Array`, or `null` when there is no such object.
    #[wasm_bindgen(catch, js_name = r2Get)]
    pub fn r2_get(bucket: &JsValue, key: &str) -> Result<js_sys::Promise, JsValue>;

    /// Every key under `prefix` (paged through `truncated`/`cursor`), as a JSON array of strings.
    #[wasm_bindgen(catch, js_name = r2List)]
    pub fn r2_list(bucket: &JsValue, prefix: &str) -> Result<js_sys::Promise, JsValue>;

    /// `bucket.delete(key)`.
    #[wasm_bindgen(catch, js_name = r2Delete)]
    pub fn r2_delete(bucket: &JsValue, key: &str) -> Result<js_sys::Promise, JsValue>;

    /// `index.upsert(vectors)` (JSON text of `[{id, values, namespace, metadata}]`); the answer as
    /// JSON text.
    #[wasm_bindgen(catch, js_name = vecUpsert)]
    pub fn vec_upsert(index: &JsValue, vectors_json: &str) -> Result<js_sys::Promise, JsValue>;

    /// `index.query(vector, options)` (both JSON text); `{matches: [...]}` as JSON text.
    #[wasm_bindgen(catch, js_name = vecQuery)]
    pub fn vec_query(index: &JsValue, vector_json: &str, options_json: &str) -> Result<js_sys::Promise, JsValue>;

    /// `index.getByIds(ids)` (JSON text); the vectors as JSON text.
    #[wasm_bindgen(catch, js_name = vecGetByIds)]
    pub fn vec_get_by_ids(index: &JsValue, ids_json: &str) -> Result<js_sys::Promise, JsValue>;

    /// `index.deleteByIds(ids)` (JSON text); the answer as JSON text.
    #[wasm_bindgen(catch, js_name = vecDeleteByIds)]
    pub fn vec_delete_by_ids(index: &JsValue, ids_json: &str) -> Result<js_sys::Promise, JsValue>;

    /// `ai.run(model, inputs)` (inputs as JSON text); the answer as JSON text.
    #[wasm_bindgen(catch, js_name = aiRun)]
    pub fn ai_run(ai: &JsValue, model: &str, inputs_json: &str) -> Result<js_sys::Promise, JsValue>;

    /// `ai.run(model, input)` for each input of a JSON array, concurrently; the answers as a
    /// JSON array, in order.
    #[wasm_bindgen(catch, js_name = aiRunEach)]
    pub fn ai_run_each(ai: &JsValue, model: &str, inputs_json: &str) -> Result<js_sys::Promise, JsValue>;

    /// `workflow.create({id, params})` (params as JSON text): starts one Workflow instance.
    #[wasm_bindgen(catch, js_name = workflowCreate)]
    pub fn workflow_create(workflow: &JsValue, id: &str, params_json: &str) -> Result<js_sys::Promise, JsValue>;

    /// `fetch(url, {headers, signal: AbortSignal.timeout(ms)})`: `{status, headers: [[name,
    /// value]], body: Uint8Array}`, redirects followed.
    #[wasm_bindgen(catch, js_name = httpGet)]
    pub fn http_get(url: &str, headers_json: &str, timeout_ms: f64) -> Result<js_sys::Promise, JsValue>;

    /// `crypto.getRandomValues(buf)`.
    #[wasm_bindgen(js_name = fillRandom)]
    pub fn fill_random(buf: &mut [u8]);

    /// `console.error(message)`: what an operator sees in `wrangler tail`.
    #[wasm_bindgen(js_name = logError)]
    pub fn log_error(message: &str);

    /// The message of a thrown value, with the messages of its `cause` chain.
    #[wasm_bindgen(js_name = errorMessage)]
    pub fn error_message(e: &JsValue) -> String;
}
