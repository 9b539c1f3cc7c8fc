// The built Worker end to end, bundled as it deploys (`wrangler deploy --dry-run --env test`)
// and run by Miniflare over D1 (CROW's migrations applied), R2 and a Queue whose consumer is the
// same Worker: create an org, ingest a batch, read it back, watch the queue drain.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Miniflare } from "miniflare";

import { COMPATIBILITY_DATE, DB_ID, bundle, migratedState, skipUnlessBuilt, jsonClient, queueOptions } from "./support.mjs";

const skip = skipUnlessBuilt();
const ADMIN = "test-admin-token";
const BASE = "http://crow.test";

let state;
let dist;
let mf;

function options(entry, bindings) {
  return {
    modules: true,
    scriptPath: entry,
    modulesRoot: dirname(entry),
    modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"] }],
    compatibilityDate: COMPATIBILITY_DATE,
    d1Databases: { DB: DB_ID },
    d1Persist: state.d1Persist,
    r2Buckets: ["BLOBS"],
    ...queueOptions(),
    bindings,
  };
}

const { fetchJson, post } = jsonClient(() => mf, BASE);

/** Ready + in-flight jobs over every queue, from /metrics; undefined when no depth is reported. */
async function pendingJobs() {
  const r = await mf.dispatchFetch(`${BASE}/metrics`);
  const text = await r.text();
  const lines = text.split("\n").filter((l) => l.startsWith("crow_queue_depth") && /state="(ready|in_flight)"/.test(l));
  if (lines.length === 0) return undefined;
  return lines.reduce((n, l) => n + Number(l.split(" ").pop()), 0);
}

describe("the Worker", { skip }, () => {
  before(async () => {
    state = migratedState();
    dist = mkdtempSync(join(tmpdir(), "crow-worker-dist-"));
    const entry = bundle(dist);
    mf = new Miniflare(options(entry, { CROW_ADMIN_TOKEN: ADMIN, CROW_LINK_SECRET: "l".repeat(32) }));
    await mf.ready;
  });

  after(async () => {
    await mf?.dispose();
    state?.dispose();
    if (dist) rmSync(dist, { recursive: true, force: true });
  });

  test("answers /healthz, and 404 problems elsewhere", async () => {
    const health = await fetchJson("/healthz");
    assert.equal(health.status, 200);
    assert.deepEqual(health.body, { status: "ok" });
    const missing = await fetchJson("/nope");
    assert.equal(missing.status, 404);
    assert.equal(missing.body.status, 404);
    assert.match(missing.headers.get("content-type"), /json/);
  });

  test("reports the queue depths on /metrics", async () => {
    const r = await mf.dispatchFetch(`${BASE}/metrics`);
    assert.equal(r.status, 200);
    const text = await r.text();
    for (const q of ["interaction", "social", "processing", "export"]) {
      assert.match(text, new RegExp(`crow_queue_depth\\{queue="${q}",state="ready"\\} 0`));
    }
  });

  test("serves the OpenAPI document", async () => {
    const doc = await fetchJson("/api/v1/openapi.json");
    assert.equal(doc.status, 200);
    assert.ok(doc.body.paths["/api/v1/interactions"], "the document lists /api/v1/interactions");
  });

  test("refuses the admin route without the right token", async () => {
    assert.equal((await post("/admin/orgs", { name: "X" })).status, 401);
    const wrong = await post("/admin/orgs", { name: "X" }, { authorization: "Bearer nope" });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.body.status, 401);
    assert.equal((await fetchJson("/admin/orgs", { headers: { authorization: `Bearer ${ADMIN}` } })).status, 405);
    const empty = await post("/admin/orgs", { name: " " }, { authorization: `Bearer ${ADMIN}` });
    assert.equal(empty.status, 400);
  });

  test("refuses API calls without a key", async () => {
    const r = await fetchJson("/api/v1/interactions");
    assert.equal(r.status, 401);
    assert.equal(typeof r.body.detail, "string");
  });

  test("creates an org, ingests a batch and lists it back; the queue drains", async () => {
    const created = await post("/admin/orgs", { name: "Worker Shop" }, { authorization: `Bearer ${ADMIN}` });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const org = created.body;
    assert.match(org.org_id, /^org_[0-9a-f]{16}$/);
    assert.match(org.write_key, /^wk_[0-9a-f]{32}$/);
    assert.match(org.api_key, /^sk_[0-9a-f]{12}_[0-9a-f]{40}$/);

    const batch = {
      writeKey: org.write_key,
      batch: [
        {
          type: "track",
          event: "Order Completed",
          userId: "u-1",
          messageId: "seg-1",
          properties: { revenue: 10 },
          timestamp: "2023-11-14T22:13:21Z",
        },
      ],
    };
    const ingest = await post("/v1/batch", batch);
    assert.equal(ingest.status, 200, JSON.stringify(ingest.body));
    // The same batch again stores nothing twice.
    assert.equal((await post("/v1/batch", batch)).status, 200);

    const auth = { authorization: `Bearer ${org.api_key}` };
    const page = await fetchJson("/api/v1/interactions?limit=100", { headers: auth });
    assert.equal(page.status, 200, JSON.stringify(page.body));
    assert.deepEqual(
      page.body.data.map((i) => i.id),
      ["seg-1"],
    );
    assert.equal(page.body.data[0].name, "Order Completed");

    // The doorbell reaches the consumer, which runs the jobs the batch enqueued.
    const deadline = Date.now() + 30_000;
    let pending = await pendingJobs();
    while (pending !== 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250));
      pending = await pendingJobs();
    }
    assert.equal(pending, 0, "the job queues drained");

    // Another org sees none of it.
    const other = await post("/admin/orgs", { name: "Other" }, { authorization: `Bearer ${ADMIN}` });
    const none = await fetchJson("/api/v1/interactions", { headers: { authorization: `Bearer ${other.body.api_key}` } });
    assert.deepEqual(none.body.data, []);
  });

  test("the Cron trigger sweeps the queues", async () => {
    const worker = await mf.getWorker();
    const result = await worker.scheduled({ cron: "* * * * *", scheduledTime: new Date() });
    assert.equal(result.outcome, "ok");
  });

  test("without CROW_ADMIN_TOKEN the admin route does not exist", async () => {
    await mf.setOptions(options(join(dist, "entry.js"), { CROW_LINK_SECRET: "l".repeat(32) }));
    const r = await post("/admin/orgs", { name: "X" }, { authorization: "Bearer anything" });
    assert.equal(r.status, 404);
  });
});
