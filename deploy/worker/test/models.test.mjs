// Vectorize, Workers AI and the social Cron schedules in the built Worker, with in-test fakes:
// Miniflare's `wrappedBindings` stand in for the VEC_* and AI bindings (test/fakes/*.mjs), and a
// local HTTP server for Hacker News. The Worker is bundled as it deploys (`wrangler deploy
// --dry-run --env test`) and run over D1 (CROW's migrations applied), R2 and the job Queue.
//
// - POST /api/v1/analyze reports tier `model` with the fake sst-2's sentiment, and embeds.
// - GET /api/v1/search reads vectors stored as the adapter writes them (Vectorize namespace =
//   org, id = sha256(org \0 id), `_id`/`_ns` in metadata): org-scoped, filtered, both below and
//   above Vectorize's topK-with-metadata limit of 20.
// - Ingest → queue sweep → search: the event's text is embedded and upserted by the
//   process-interaction workflow, and found by its org only.
// - Cron → CROW_SOCIAL → Hacker News (local) → mentions stored.
// The last two need D1 store methods other work is moving onto the SQL layer: while the store
// answers 503 for them, those tests skip and say so.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Miniflare } from "miniflare";

import { embed } from "./fakes/ai.mjs";
import { COMPATIBILITY_DATE, DB_ID, bundle, migratedState, skipUnlessBuilt, workerDir, jsonClient, queueOptions } from "./support.mjs";

const skip = skipUnlessBuilt();
const ADMIN = "test-admin-token";
const BASE = "http://crow.test";
const HN_FIXTURE = join(workerDir, "..", "..", "crow-ingest", "tests", "data", "social", "fixtures", "hackernews_page0.json");

let state;
let dist;
let mf;
let entry;

const vectorId = (org, id) => createHash("sha256").update(`${org}\0${id}`).digest("hex");

/** A vector as crow-worker's Vectorize adapter stores it. */
function stored(org, id, text, metadata = {}, ns) {
  const meta = { ...metadata, snippet: text, _id: id };
  if (ns) meta._ns = ns;
  return { id: vectorId(org, id), namespace: org, values: embed(text), metadata: meta };
}

function options(bindings, seed = []) {
  const vec = (name, s = []) => ({ scriptName: "fake-vectorize", bindings: { NAME: name, SEED: s } });
  return {
    handleRuntimeStdio(stdout, stderr) {
      stdout.on("data", (d) => logs.push(String(d)));
      stderr.on("data", (d) => logs.push(String(d)));
    },
    // Persistence is a shared option: at the top level, not per worker.
    d1Persist: state.d1Persist,
    workers: [
      {
        name: "crow",
        modules: true,
        scriptPath: entry,
        modulesRoot: dirname(entry),
        modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"] }],
        compatibilityDate: COMPATIBILITY_DATE,
        d1Databases: { DB: DB_ID },
        r2Buckets: ["BLOBS"],
        ...queueOptions(),
        bindings: { CROW_ADMIN_TOKEN: ADMIN, CROW_LINK_SECRET: "l".repeat(32), ...bindings },
        wrappedBindings: {
          VEC_INTERACTIONS: vec("interactions", seed),
          VEC_PRODUCTS: vec("products"),
          VEC_SOCIAL: vec("social"),
          AI: { scriptName: "fake-ai" },
        },
      },
      // Wrapped-binding workers: no compatibilityDate, a default export taking the env.
      { name: "fake-vectorize", modules: true, script: readFileSync(join(workerDir, "test", "fakes", "vectorize.mjs"), "utf8") },
      { name: "fake-ai", modules: true, script: readFileSync(join(workerDir, "test", "fakes", "ai.mjs"), "utf8") },
    ],
  };
}

const { fetchJson, post } = jsonClient(() => mf, BASE);
const bearer = (org) => ({ authorization: `Bearer ${org.api_key}` });
const search = (org, query) => fetchJson(`/api/v1/search?${query}`, { headers: bearer(org) });

async function createOrg(name) {
  const r = await post("/admin/orgs", { name }, { authorization: `Bearer ${ADMIN}` });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body;
}

/** Why a store-backed step cannot run yet (the D1 store answers 503): the detail, or undefined. */
function notYet(r) {
  return r.status === 503 ? r.body.detail ?? "503" : undefined;
}

/** What the Worker printed (console.warn/error), to see why a Cron run stopped. */
const logs = [];

async function until(what, check, ms = 30_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe("Vectorize, Workers AI and social schedules", { skip }, () => {
  let a;
  let b;

  before(async () => {
    state = migratedState();
    dist = mkdtempSync(join(tmpdir(), "crow-worker-dist-"));
    entry = bundle(dist);
    mf = new Miniflare(options({}));
    await mf.ready;
    a = await createOrg("Org A");
    b = await createOrg("Org B");
  });

  after(async () => {
    await mf?.dispose();
    state?.dispose();
    if (dist) rmSync(dist, { recursive: true, force: true });
  });

  test("POST /api/v1/analyze runs the model tier: sst-2 sentiment, lexicon entities, embeddings", async () => {
    const texts = ["I love these shoes, excellent grip", "The zipper arrived broken, terrible", "The parcel came on Tuesday", ""];
    const r = await post("/api/v1/analyze", { texts, embed: true }, bearer(a));
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.tier, "model");
    const s = r.body.data.map((d) => d.sentiment);
    assert.deepEqual(
      s.map((x) => [x.label, x.tier]),
      [
        ["positive", "model"],
        ["negative", "model"],
        ["neutral", "model"],
        ["neutral", "model"],
      ],
    );
    assert.ok(Math.abs(s[0].score - 0.94) < 1e-5, `p(pos) - p(neg) = 0.97 - 0.03: ${s[0].score}`);
    assert.ok(Math.abs(s[1].score + 0.94) < 1e-5);
    assert.equal(s[2].score, 0);
    // Language, entities and key phrases still come from the lexicon analyzer.
    const lexicon = await post("/api/v1/analyze", { text: "Contact me at jane@example.com about the Acme Atlas backpack" }, bearer(a));
    assert.ok(lexicon.body.data[0].entities.some((x) => x.kind === "email"), JSON.stringify(lexicon.body));
    assert.ok(lexicon.body.data[0].key_phrases.length > 0, JSON.stringify(lexicon.body));
    const e = r.body.data[0].embedding;
    assert.equal(e.length, 384);
    assert.ok(Math.abs(e.reduce((n, x) => n + x * x, 0) - 1) < 1e-4, "embeddings are L2-normalized");
  });

  test("GET /api/v1/search reads Vectorize org-scoped, filtered, above and below topK 20", async () => {
    const empty = await search(a, "q=trail+running+shoes");
    assert.equal(empty.status, 200, JSON.stringify(empty.body));
    assert.deepEqual(empty.body.data, []);

    const filler = Array.from({ length: 30 }, (_, i) => stored(a.org_id, `fill-${i}`, `unrelated words number ${i}`, { label: "neutral" }));
    await mf.setOptions(
      options({}, [
        stored(a.org_id, "ev-a1", "trail running shoes with great grip", { label: "positive", type: "track" }),
        stored(a.org_id, "ev-a2", "running shoes broken after a week", { label: "negative", type: "track" }, "web"),
        stored(b.org_id, "ev-b1", "trail running shoes trail running shoes", { label: "positive" }),
        ...filler,
      ]),
    );

    const hits = await search(a, "q=trail+running+shoes&k=5");
    assert.equal(hits.status, 200, JSON.stringify(hits.body));
    const ids = hits.body.data.map((h) => h.id);
    assert.equal(ids[0], "ev-a1");
    assert.equal(ids[1], "ev-a2");
    assert.ok(!ids.includes("ev-b1"), "another org's vector never shows");
    assert.equal(hits.body.data[0].snippet, "trail running shoes with great grip");
    assert.deepEqual(hits.body.data[0].metadata, { label: "positive", type: "track" }, "_id and _ns are stripped");
    assert.ok(hits.body.data[0].score > hits.body.data[1].score);

    const filtered = await search(a, "q=trail+running+shoes&filter=label%3Dnegative");
    assert.deepEqual(
      filtered.body.data.map((h) => h.id),
      ["ev-a2"],
    );

    // Above 20 hits: ids and scores first, then the metadata through getByIds.
    const many = await search(a, "q=trail+running+shoes&k=40");
    assert.equal(many.status, 200, JSON.stringify(many.body));
    assert.equal(many.body.data.length, 32, "all of org A's vectors, none of B's");
    assert.deepEqual(
      many.body.data.slice(0, 2).map((h) => h.id),
      ["ev-a1", "ev-a2"],
    );
    assert.equal(many.body.data[0].snippet, "trail running shoes with great grip");
    for (let i = 1; i < many.body.data.length; i++) assert.ok(many.body.data[i - 1].score >= many.body.data[i].score);

    const other = await search(b, "q=trail+running+shoes");
    assert.deepEqual(
      other.body.data.map((h) => h.id),
      ["ev-b1"],
    );
  });

  test("ingested text is embedded into Vectorize by the queue sweep and found by its org only", async (t) => {
    const batch = {
      writeKey: a.write_key,
      batch: [
        {
          type: "track",
          event: "Feedback Sent",
          userId: "u-1",
          messageId: "fb-1",
          properties: { feedback: "The backpack zipper arrived broken, terrible quality" },
          timestamp: "2024-03-01T10:00:00Z",
        },
      ],
    };
    const ingest = await post("/v1/batch", batch);
    const why = notYet(ingest);
    if (why) return t.skip(`the D1 store cannot store events yet: ${why}`);
    assert.equal(ingest.status, 200, JSON.stringify(ingest.body));
    // The process-interaction job runs from the Queue; a store method it needs that D1 does not
    // serve yet fails it with 503, recorded on the job row.
    const db = await mf.getD1Database("DB", "crow");
    let blocked;
    const found = await until("the event in the index", async () => {
      const r = await search(a, "q=backpack+zipper+broken");
      if (r.body.data?.some((h) => h.id === "fb-1")) return r;
      blocked = await db
        .prepare("SELECT last_error FROM jobs WHERE last_error LIKE '%not available on this backend yet%' LIMIT 1")
        .first("last_error");
      return blocked ? r : undefined;
    });
    if (blocked) return t.skip(`the D1 store cannot run process-interaction yet: ${blocked}`);
    const hit = found.body.data.find((h) => h.id === "fb-1");
    assert.equal(hit.metadata.label, "negative", "the model tier's sentiment is in the metadata");
    const other = await search(b, "q=backpack+zipper+broken");
    assert.ok(!other.body.data.some((h) => h.id === "fb-1"));
  });

  test("the Cron trigger polls the CROW_SOCIAL sources that are due", async (t) => {
    const fixture = readFileSync(HN_FIXTURE);
    const requests = [];
    const server = createServer((req, res) => {
      requests.push(req.url);
      res.writeHead(200, { "content-type": "application/json" });
      res.end(fixture);
    });
    await new Promise((r) => server.listen(0, "127.0.0.1", r));
    t.after(() => server.close());
    const social = [
      `org = "${a.org_id}"`,
      "allow_private_addresses = true",
      "max_pages = 1",
      "[[sources]]",
      'name = "hn"',
      'platform = "hackernews"',
      'schedule = "* * * * *"',
      'query = "acme"',
      `url = "http://127.0.0.1:${server.address().port}"`,
    ].join("\n");
    await mf.setOptions(options({ CROW_SOCIAL: social }));
    const worker = await mf.getWorker("crow");
    const result = await worker.scheduled({ cron: "* * * * *", scheduledTime: new Date() });
    assert.equal(result.outcome, "ok");
    const blocked = /social: [^'"\]]*not available on this backend yet/;
    await until("the Hacker News request", () => requests.length > 0 || logs.some((l) => blocked.test(l)));
    if (requests.length === 0) {
      return t.skip(`the D1 store cannot run the social channel yet: ${logs.find((l) => blocked.test(l)).match(blocked)[0]}`);
    }
    assert.match(requests[0], /^\/api\/v1\/search_by_date\?query=acme/);
    const mentions = await until("stored mentions", async () => {
      const r = await fetchJson("/api/v1/mentions", { headers: bearer(a) });
      return r.body.data?.length > 0 && r;
    });
    assert.ok(mentions.body.data.every((m) => m.platform === "hackernews"));
  });
});
