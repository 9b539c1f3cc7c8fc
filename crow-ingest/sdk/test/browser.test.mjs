// crow.js in real headless Chromium (Debian's `chromium`, driven by playwright-core) against a
// real `crow serve`. Test pages come from a second origin (a tiny static server here), so
// every request is cross-origin as on a customer's site.
//
//   CROW_BIN=target/debug/crow node --test --test-concurrency=1 test/browser.test.mjs
//
// CHROMIUM overrides /usr/bin/chromium. Nothing here reaches beyond 127.0.0.1.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { createServer } from "node:http";
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const BIN = process.env.CROW_BIN || new URL("../../../target/debug/crow", import.meta.url).pathname;
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const POSTHOG_JS = new URL("../node_modules/posthog-js/dist/array.js", import.meta.url);

const tmp = mkdtempSync(join(tmpdir(), "crow-sdk-"));
const data = join(tmp, "data");
let crow; // { proc, base, port }
let keys; // { org_id, write_key, api_key }
let pages; // the test pages' origin
let pageServer;
let browser;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Starts `crow serve` on `port` (0: any) and resolves once it listens. */
function startCrow(port = 0) {
  const proc = spawn(BIN, ["--data", data, "--models", join(tmp, "no-models"), "serve", "--addr", `127.0.0.1:${port}`], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let log = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`crow serve did not start:\n${log}`)), 60_000);
    proc.stderr.on("data", (chunk) => {
      log += chunk;
      const m = log.match(/listening on http:\/\/(\S+)\s/); // a whole address: stderr arrives in chunks
      if (m && timer) {
        clearTimeout(timer);
        const base = `http://${m[1]}`;
        resolve({ proc, base, port: Number(new URL(base).port), log: () => log });
      }
    });
    proc.on("exit", (code) => reject(new Error(`crow serve exited with ${code}:\n${log}`)));
  });
}

async function stopCrow() {
  const exited = new Promise((r) => crow.proc.once("exit", r));
  crow.proc.kill("SIGTERM");
  await exited;
}

/** GET on CROW's read API with the org's secret key. */
async function api(path) {
  const r = await fetch(crow.base + path, { headers: { authorization: `Bearer ${keys.api_key}` } });
  assert.equal(r.status, 200, await r.clone().text());
  return r.json();
}

/** Every stored interaction whose page URL carries `?run=<run>`. */
async function stored(run) {
  const out = [];
  let cursor = null;
  do {
    const body = await api(`/api/v1/interactions?limit=1000${cursor ? `&cursor=${cursor}` : ""}`);
    out.push(...body.data);
    cursor = body.next_cursor;
  } while (cursor);
  return out.filter((e) => (e.context?.page?.url || "").includes(`run=${run}&`)).reverse();
}

/** Polls until `stored(run)` has `n` interactions (or more, which the caller's asserts catch). */
async function waitStored(run, n, ms = 20_000) {
  const end = Date.now() + ms;
  let got = [];
  while (Date.now() < end) {
    got = await stored(run);
    if (got.length >= n) return got;
    await sleep(100);
  }
  assert.fail(`expected ${n} interactions for run ${run}, got ${got.length}: ${JSON.stringify(got.map((e) => e.type))}`);
}

async function waitUntil(f, ms = 20_000) {
  const end = Date.now() + ms;
  while (!(await f())) {
    assert.ok(Date.now() < end, `timed out waiting for ${f}`);
    await sleep(100);
  }
}

async function metric(name) {
  const text = await (await fetch(crow.base + "/metrics")).text();
  const line = text.split("\n").find((l) => l.startsWith(name + " "));
  return line ? Number(line.split(" ")[1]) : 0;
}

let runs = 0;
/**
 * Opens the test page in a fresh browser context (its own localStorage), with crow.js loaded
 * from `crow serve` and initialized with `opts` (unless `opts` is null). Returns { page, run }.
 */
async function open(opts = {}, { context: ctxOpts = {}, path = "/shop" } = {}) {
  const run = `r${++runs}`;
  const context = await browser.newContext(ctxOpts);
  const page = await context.newPage();
  page.on("pageerror", (e) => console.error(`[${run}] page error:`, e));
  const q = new URLSearchParams({ run, opts: opts ? JSON.stringify({ key: keys.write_key, host: crow.base, ...opts }) : "" });
  await page.goto(`${pages}${path}?${q}`, { referer: "https://www.google.com/" });
  return { page, run, context };
}

const queued = (page) => page.evaluate(() => JSON.parse(localStorage.crow || "null"));

before(async () => {
  mkdirSync(data, { recursive: true });
  keys = JSON.parse(execFileSync(BIN, ["--data", data, "org", "create", "sdk-tests", "--json"], { encoding: "utf8" }));
  crow = await startCrow();
  pageServer = createServer((req, res) => {
    const url = new URL(req.url, "http://x");
    if (url.pathname === "/posthog.js") {
      res.writeHead(200, { "content-type": "text/javascript" });
      return res.end(readFileSync(POSTHOG_JS));
    }
    if (url.pathname === "/favicon.ico") return res.writeHead(404).end();
    const opts = url.searchParams.get("opts");
    const posthog = url.searchParams.get("posthog");
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    res.end(`<!doctype html><html><head><meta charset="utf-8"><title>Blue shoe</title>
      <script src="${crow.base}/sdk/crow.js"></script>
      ${opts ? `<script>crow.init(${opts})</script>` : ""}
      ${posthog ? `<script src="/posthog.js"></script><script>${posthog}</script>` : ""}
      </head><body><h1>Blue shoe</h1><form><input name="email" value="jane@example.com"></form></body></html>`);
  });
  await new Promise((r) => pageServer.listen(0, "127.0.0.1", r));
  pages = `http://127.0.0.1:${pageServer.address().port}`;
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
});

after(async () => {
  await browser?.close();
  pageServer?.close();
  if (crow) await stopCrow();
  rmSync(tmp, { recursive: true, force: true });
});

test("page views and custom events arrive with the right fields", async () => {
  const { page, run, context } = await open({ wait: 100 });
  await page.evaluate(() => crow.track("Add to cart", { sku: "42", price: 59.9 }));
  // Sessions are assigned by the process-interaction workflow, shortly after ingest.
  let pv, ev;
  await waitUntil(async () => ([pv, ev] = await waitStored(run, 2)) && pv.session_id && ev.session_id);
  const { a } = await queued(page);
  for (const e of [pv, ev]) {
    assert.equal(e.source, "crow");
    assert.equal(e.anonymous_id, a);
    // The IP addresses in the URL are PII to CROW, scrubbed before storage.
    assert.equal(e.context.page.url, page.url().replaceAll("127.0.0.1", "[ip]"));
    assert.equal(e.context.page.path, "/shop");
    assert.equal(e.context.page.title, "Blue shoe");
    assert.equal(e.context.locale, "en-US");
    assert.match(e.context.user_agent.browser, /Chrome/);
  }
  assert.equal(pv.type, "page");
  assert.equal(pv.referrer_class, "search");
  assert.equal(ev.type, "track");
  assert.equal(ev.name, "Add to cart");
  assert.deepEqual(ev.properties, { sku: "42", price: 59.9 });
  assert.equal(pv.session_id, ev.session_id);
  // The ids are the SDK's own: a resend can never be stored twice.
  assert.notEqual(pv.id, ev.id);
  assert.ok(!JSON.stringify([pv, ev]).includes("jane@example.com"), "form values are never read");
  await context.close();
});

test("single-page navigation counts pages (pushState, replaceState, popstate)", async () => {
  const { page, run, context } = await open({ wait: 100 });
  await page.evaluate(() => history.pushState({}, "", "/shop/a" + location.search));
  await page.evaluate(() => history.pushState({}, "", "/shop/b" + location.search));
  await page.evaluate(() => history.replaceState({ scroll: 1 }, "")); // same URL: not a page
  await page.evaluate(() => history.replaceState({}, "", "/shop/c" + location.search));
  await page.evaluate(() => history.pushState({}, "", location.pathname + location.search + "#reviews"));
  await page.evaluate(() => history.go(-2)); // back over the fragment entry to /shop/a
  const got = await waitStored(run, 5);
  await sleep(500);
  const paths = (await stored(run)).map((e) => [e.type, e.context.page.path]);
  assert.deepEqual(paths, [
    ["page", "/shop"],
    ["page", "/shop/a"],
    ["page", "/shop/b"],
    ["page", "/shop/c"],
    ["page", "/shop/a"],
  ]);
  assert.equal(new Set(got.map((e) => e.session_id)).size, 1);
  await context.close();
});

test("offline: with the server stopped events wait in localStorage, then arrive exactly once", async () => {
  const { page, run, context } = await open({ wait: 100 });
  await waitStored(run, 1);
  const port = crow.port;
  await stopCrow();
  try {
    await page.evaluate(() => ["a", "b", "c"].forEach((n) => crow.track(n)));
    await sleep(1500); // a few failed sends and retries
    const q = (await queued(page)).q;
    assert.deepEqual(
      q.map((e) => e.n),
      ["a", "b", "c"],
    );
  } finally {
    crow = await startCrow(port);
  }
  const got = await waitStored(run, 4, 30_000);
  await sleep(1000); // any duplicate would arrive by now
  const all = await stored(run);
  assert.deepEqual(
    all.map((e) => e.name ?? e.type),
    ["page", "a", "b", "c"],
  );
  assert.equal(new Set(all.map((e) => e.id)).size, 4);
  assert.equal(got.length, 4);
  assert.deepEqual((await queued(page)).q, []);
  await context.close();
});

test("a page closed mid-batch still delivers through sendBeacon", async () => {
  const { page, run, context } = await open({ wait: 60_000, batch: 100 });
  await page.evaluate(() => {
    crow.track("Read article", { seconds: 42 });
    crow.track("Scrolled", { depth: 0.9 });
  });
  await page.close({ runBeforeUnload: true });
  const got = await waitStored(run, 3);
  // Delivery is the point here, not order: events stamped within the same millisecond may be
  // listed in either order.
  assert.deepEqual(got.map((e) => e.name ?? e.type).sort(), ["Read article", "Scrolled", "page"]);
  await context.close();
});

test("consent: nothing is sent before optIn, sending starts with it, and stops at optOut", async () => {
  const { page, run, context } = await open({ wait: 100, consent: true });
  await page.evaluate(() => crow.track("before consent"));
  await sleep(800);
  assert.equal((await stored(run)).length, 0);
  assert.equal(await queued(page), null, "nothing is written to localStorage either");
  await page.evaluate(() => crow.optIn());
  await page.evaluate(() => crow.track("after consent"));
  await waitStored(run, 2);
  await page.evaluate(() => {
    crow.optOut();
    crow.track("after opt-out");
  });
  await page.evaluate(() => history.pushState({}, "", "/shop/next" + location.search));
  await sleep(800);
  assert.deepEqual(
    (await stored(run)).map((e) => e.name ?? e.type),
    ["page", "after consent"],
  );
  await context.close();
});

test("Do-Not-Track (the browser's own setting) suppresses sending", async () => {
  // A profile whose preferences turn on Chromium's "Send a Do Not Track request".
  const profile = join(tmp, "dnt-profile");
  mkdirSync(join(profile, "Default"), { recursive: true });
  writeFileSync(join(profile, "Default", "Preferences"), JSON.stringify({ enable_do_not_track: true }));
  const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, args: ARGS });
  try {
    const page = await context.newPage();
    const run = `r${++runs}`;
    const opts = JSON.stringify({ key: keys.write_key, host: crow.base, wait: 100 });
    await page.goto(`${pages}/shop?${new URLSearchParams({ run, opts })}`);
    assert.equal(await page.evaluate(() => navigator.doNotTrack), "1");
    await page.evaluate(() => crow.track("tracked?"));
    await sleep(800);
    assert.equal((await stored(run)).length, 0);
  } finally {
    await context.close();
  }
});

test("Global Privacy Control suppresses sending", async () => {
  const { page, run, context } = await open(null);
  // Chromium has no GPC switch of its own; browsers and extensions that send it expose it so.
  await context.addInitScript(() => Object.defineProperty(Navigator.prototype, "globalPrivacyControl", { get: () => true }));
  await page.reload();
  await page.evaluate(
    ([key, host]) => {
      crow.init({ key, host, wait: 100 });
      crow.track("tracked?");
    },
    [keys.write_key, crow.base],
  );
  await sleep(800);
  assert.equal(await page.evaluate(() => navigator.globalPrivacyControl), true);
  assert.equal((await stored(run)).length, 0);
  await context.close();
});

test("the queue's bound drops the oldest events and the server counts them", async () => {
  const before = await metric("crow_sdk_dropped_events_total");
  const { page, run, context } = await open({ wait: 100, max: 3 });
  await waitStored(run, 1);
  await context.setOffline(true);
  await page.evaluate(() => ["e1", "e2", "e3", "e4", "e5"].forEach((n) => crow.track(n)));
  await sleep(300);
  const state = await queued(page);
  assert.deepEqual(
    state.q.map((e) => e.n),
    ["e3", "e4", "e5"],
  );
  assert.equal(state.d, 2);
  await context.setOffline(false); // the browser's `online` event sends at once
  await waitStored(run, 4);
  await sleep(300);
  assert.deepEqual(
    (await stored(run)).map((e) => e.name ?? e.type),
    ["page", "e3", "e4", "e5"],
  );
  assert.equal((await metric("crow_sdk_dropped_events_total")) - before, 2);
  assert.equal((await queued(page)).d, 0);
  await context.close();
});

test("a 5xx answer is retried with growing, jittered delays", async () => {
  const { page, run, context } = await open(null);
  const times = [];
  await page.route(`${crow.base}/api/v1/events`, (route) => {
    times.push(Date.now());
    // The first three answers are a failing load balancer; then the real server answers.
    return times.length <= 3 ? route.fulfill({ status: 503, body: "busy" }) : route.continue();
  });
  await page.evaluate(
    ([key, host]) => {
      crow.init({ key, host, wait: 200, auto: false });
      crow.track("Paid");
    },
    [keys.write_key, crow.base],
  );
  const got = await waitStored(run, 1, 30_000);
  assert.equal(got[0].name, "Paid");
  assert.equal(times.length, 4);
  const gaps = times.slice(1).map((t, i) => t - times[i]);
  // 400, 800, 1600 ms nominal, each within ±50 %.
  gaps.forEach((g, i) => assert.ok(g >= 200 * 2 ** (i + 1) * 0.5 - 50 && g < 200 * 2 ** (i + 1) * 1.5 + 250, `gap ${i}: ${g} ms`));
  await context.close();
});

test("identify attaches the user to later events; replaceState without a new URL is no page", async () => {
  const { page, run, context } = await open({ wait: 100 });
  await page.evaluate(() => {
    crow.identify("user-42", { plan: "pro" });
    history.replaceState({ step: 2 }, "");
    crow.track("Upgraded");
  });
  const got = await waitStored(run, 3);
  await sleep(300);
  const all = await stored(run);
  assert.deepEqual(
    all.map((e) => e.type),
    ["page", "identify", "track"],
  );
  const [, id, tr] = all;
  assert.equal(id.user_id, "user-42");
  assert.equal(id.properties?.plan ?? id.traits?.plan, "pro");
  assert.equal(tr.user_id, "user-42");
  assert.equal(new Set(got.map((e) => e.anonymous_id)).size, 1);
  await context.close();
});

test("the real posthog-js client, in gzip-js mode, delivers events that are stored", async () => {
  const run = `r${++runs}`;
  const context = await browser.newContext();
  const page = await context.newPage();
  if (process.env.DEBUG_POSTHOG) {
    page.on("console", (m) => console.error("console:", m.text()));
    page.on("requestfinished", async (r) => console.error("request:", r.method(), r.url(), (await r.response())?.status()));
    page.on("requestfailed", (r) => console.error("failed:", r.method(), r.url(), r.failure()?.errorText));
  }
  const bodies = []; // [?compression=, whether the body starts with the gzip magic bytes]
  page.on("request", (r) => {
    const u = new URL(r.url());
    if (u.origin === crow.base && u.pathname.startsWith("/e")) {
      const b = r.postDataBuffer();
      bodies.push([u.searchParams.get("compression"), !!b && b[0] === 0x1f && b[1] === 0x8b]);
    }
  });
  const init = `posthog.init(${JSON.stringify(keys.write_key)}, {api_host: ${JSON.stringify(crow.base)}, autocapture: false, request_batching: true,
      // posthog-js drops events from automated browsers; its own advice for end-to-end tests:
      opt_out_useragent_filter: true});
    posthog.capture("Clicked buy", {sku: "42"});`;
  await page.goto(`${pages}/shop?${new URLSearchParams({ run, posthog: init })}`);
  const got = await waitStored(run, 2, 30_000);
  const seen = got.map((e) => [e.type, e.name]);
  assert.ok(seen.some(([t]) => t === "page"), JSON.stringify(seen)); // its $pageview
  assert.ok(seen.some(([t, n]) => t === "track" && n === "Clicked buy"), JSON.stringify(seen));
  assert.ok(got.every((e) => e.source === "posthog"));
  assert.equal(got.find((e) => e.name === "Clicked buy").properties.sku, "42");
  // CROW's remote config (supportedCompression) puts posthog-js in gzip-js mode, and every
  // capture body is gzip (this version compresses with the browser's CompressionStream and
  // no longer adds ?compression=; CROW recognizes gzip by its magic bytes).
  await waitUntil(() => page.evaluate(() => posthog.compression === "gzip-js"));
  await page.evaluate(() => posthog.capture("Compared sizes", { size: 2 }));
  const later = await waitStored(run, got.length + 1, 30_000);
  assert.ok(later.some((e) => e.name === "Compared sizes"));
  assert.ok(bodies.length >= 2 && bodies.every(([, gz]) => gz), JSON.stringify(bodies));
  await context.close();
});

test("crow serve hands out the SDK with caching headers", async () => {
  const r = await fetch(`${crow.base}/sdk/crow.js`, { headers: { "accept-encoding": "gzip" } });
  assert.equal(r.status, 200);
  const etag = r.headers.get("etag");
  assert.match(etag, /^"[0-9a-f]{16}"$/);
  assert.match(r.headers.get("cache-control"), /max-age=\d{5,}/);
  assert.equal(await r.text(), readFileSync(new URL("../dist/crow.min.js", import.meta.url), "utf8"));
  const again = await fetch(`${crow.base}/sdk/crow.js`, { headers: { "if-none-match": etag } });
  assert.equal(again.status, 304);
});
