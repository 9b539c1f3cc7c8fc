// The JS side of crow-worker's bindings (src/glue.rs): D1, R2, Vectorize, Workers AI, fetch and
// crypto, with values crossing as JSON text or byte arrays. The conversions on the Rust side live
// in src/d1.rs, src/vectorize.rs, src/ai.rs and src/social.rs.

/** A parameter as D1 binds it: `{b: base64}` (or an array of bytes) is a BLOB. */
function param(v) {
  if (v !== null && typeof v === "object") {
    if (Array.isArray(v)) return new Uint8Array(v);
    if (typeof v.b === "string") return base64Bytes(v.b);
  }
  return v;
}

function base64Bytes(s) {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** A column value as JSON can carry it: BLOBs (D1 answers number arrays, or buffers) as arrays of bytes. */
function column(v) {
  if (v instanceof ArrayBuffer) return Array.from(new Uint8Array(v));
  if (ArrayBuffer.isView(v)) return Array.from(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
  return v;
}

function prepare(db, sql, params) {
  const stmt = db.prepare(sql);
  return params.length ? stmt.bind(...params.map(param)) : stmt;
}

/** Runs one statement; its rows as JSON text, each a positional array. */
export async function d1Query(db, sql, paramsJson) {
  const rows = await prepare(db, sql, JSON.parse(paramsJson)).raw();
  return JSON.stringify(rows.map((r) => r.map(column)));
}

/**
 * Runs statements atomically (`db.batch`); `[{changes, rows}]` as JSON text. Batch rows come as
 * objects: their values in column order make the positional arrays (statements alias every
 * column they return, so no two columns share a name).
 */
export async function d1Batch(db, stmtsJson) {
  const stmts = JSON.parse(stmtsJson).map((s) => prepare(db, s.sql, s.params));
  const results = await db.batch(stmts);
  return JSON.stringify(
    results.map((r) => ({
      changes: r.meta?.changes ?? 0,
      rows: (r.results ?? []).map((row) => Object.values(row).map(column)),
    })),
  );
}

function bucketOf(bucket) {
  if (!bucket) throw new Error("the R2 binding `BLOBS` is missing");
  return bucket;
}

/** Writes an object (the bytes are copied first: the view into wasm memory may move). */
export async function r2Put(bucket, key, bytes) {
  const copy = bytes.slice();
  await bucketOf(bucket).put(key, copy);
}

/** An object's bytes, or null. */
export async function r2Get(bucket, key) {
  const obj = await bucketOf(bucket).get(key);
  if (obj === null) return null;
  return new Uint8Array(await obj.arrayBuffer());
}

/** Every key under a prefix, as JSON text (`limit` per page: tests make it small). */
export async function r2List(bucket, prefix, limit = 1000) {
  const keys = [];
  let cursor;
  for (;;) {
    const page = await bucketOf(bucket).list({ prefix, cursor, limit });
    for (const o of page.objects) keys.push(o.key);
    if (!page.truncated) break;
    cursor = page.cursor;
  }
  return JSON.stringify(keys);
}

/** Deletes an object (a missing one is no error). */
export async function r2Delete(bucket, key) {
  await bucketOf(bucket).delete(key);
}

function bindingOf(binding, what) {
  if (!binding) throw new Error(`the ${what} binding is missing`);
  return binding;
}

/** Upserts vectors (JSON text); the mutation answer as JSON text. */
export async function vecUpsert(index, vectorsJson) {
  return JSON.stringify((await bindingOf(index, "Vectorize").upsert(JSON.parse(vectorsJson))) ?? null);
}

/** A nearest-neighbour query (vector and options as JSON text); `{matches}` as JSON text. */
export async function vecQuery(index, vectorJson, optionsJson) {
  return JSON.stringify(await bindingOf(index, "Vectorize").query(JSON.parse(vectorJson), JSON.parse(optionsJson)));
}

/** Vectors by id (JSON text); the vectors as JSON text (values as plain arrays). */
export async function vecGetByIds(index, idsJson) {
  const found = await bindingOf(index, "Vectorize").getByIds(JSON.parse(idsJson));
  return JSON.stringify((found ?? []).map((v) => ({ ...v, values: v.values ? Array.from(v.values) : v.values })));
}

/** Deletes vectors by id (JSON text); the mutation answer as JSON text. */
export async function vecDeleteByIds(index, idsJson) {
  return JSON.stringify((await bindingOf(index, "Vectorize").deleteByIds(JSON.parse(idsJson))) ?? null);
}

/** Runs a Workers AI model (inputs as JSON text); the answer as JSON text. */
export async function aiRun(ai, model, inputsJson) {
  return JSON.stringify(await bindingOf(ai, "Workers AI `AI`").run(model, JSON.parse(inputsJson)));
}

/** Runs a model once per input (a JSON array), concurrently; the answers as a JSON array. */
export async function aiRunEach(ai, model, inputsJson) {
  const binding = bindingOf(ai, "Workers AI `AI`");
  return JSON.stringify(await Promise.all(JSON.parse(inputsJson).map((input) => binding.run(model, input))));
}

/** A GET for the social adapters: `{status, headers, body}`. */
export async function httpGet(url, headersJson, timeoutMs) {
  const r = await fetch(url, { headers: JSON.parse(headersJson), redirect: "follow", signal: AbortSignal.timeout(timeoutMs) });
  return { status: r.status, headers: [...r.headers], body: new Uint8Array(await r.arrayBuffer()) };
}

/** Starts one instance of a Workflow binding; resolves to its id. */
export async function workflowCreate(workflow, id, paramsJson) {
  const instance = await bindingOf(workflow, "Workflow `EXPORT_WF`").create({ id, params: JSON.parse(paramsJson) });
  return instance.id;
}

/** Fills a byte view from the platform's CSPRNG. */
export function fillRandom(buf) {
  crypto.getRandomValues(buf);
}

/** Logs an error the Rust side handled (visible in `wrangler tail`). */
export function logError(message) {
  console.error(`crow: ${message}`);
}

/** A thrown value's message, with its causes (D1 puts SQLite's words in `cause`). */
export function errorMessage(e) {
  const parts = [];
  for (let x = e, depth = 0; x !== undefined && x !== null && depth < 5; x = x.cause, depth++) {
    parts.push(x instanceof Error ? x.message : String(x));
    if (typeof x !== "object") break;
  }
  return parts.filter((p, i) => p && parts.indexOf(p) === i).join(": ");
}
