// Fast unit tests of the built crow.js in a sandbox (harness.mjs): `node --test test/`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Page, settle } from "./harness.mjs";

const KEY = "wk_0123456789abcdef0123456789abcdef";
const HOST = "https://crow.example";
const init = (page, opts = {}) => page.crow.init({ key: KEY, host: HOST, ...opts });

test("init records a page view and sends it at once with the page's context", async () => {
  const p = new Page({ href: "https://shop.example/p/42?utm_source=news#top" });
  p.respond = () => new Promise(() => {}); // never answers
  init(p, { wait: 250 });
  await settle();
  assert.equal(p.state.q.length, 1, "the event waits in localStorage until the server confirms");
  assert.equal(p.fetches.length, 1);
  const { url, init: req, body } = p.fetches[0];
  assert.equal(url, `${HOST}/api/v1/events`);
  assert.equal(req.method, "POST");
  assert.equal(req.keepalive, undefined, "keepalive caps bodies at 64 KiB; pagehide beacons instead");
  assert.equal(typeof req.body, "string", "a string body is text/plain: no CORS preflight");
  assert.equal(body.k, KEY);
  assert.ok(Math.abs(body.sa - Date.now()) < 5000);
  assert.deepEqual(body.c, { l: "fr-FR" });
  const [e] = body.b;
  assert.equal(e.t, "p");
  assert.deepEqual(e.c, { u: "https://shop.example/p/42?utm_source=news#top", r: "https://www.google.com/", ti: "Home" });
  assert.match(e.i, /^[0-9a-z.]{8,40}$/);
  assert.match(e.a, /^[0-9a-z.]{8,40}$/);
  assert.equal(e.a, p.state.a);
  assert.ok(Math.abs(e.ts - Date.now()) < 5000);
});

test("a later event waits `wait` ms for company, then a 2xx empties the queue", async () => {
  const p = new Page();
  init(p, { wait: 250, auto: false });
  p.crow.track("x");
  assert.equal(p.fetches.length, 0);
  assert.equal(await p.tick(), 250);
  assert.equal(p.fetches.length, 1);
  assert.deepEqual(p.state.q, []);
});

test("track batches until `batch` events, then sends at once", async () => {
  const p = new Page();
  init(p, { batch: 3, auto: false });
  p.crow.track("Add to cart", { sku: "42", price: 59.9 });
  p.crow.track("Checkout");
  assert.equal(p.fetches.length, 0);
  assert.equal(p.pending.length, 1, "one timer for the partial batch");
  p.crow.track("Paid", { total: 59.9 });
  await settle();
  assert.equal(p.fetches.length, 1);
  assert.deepEqual(
    p.sent.map((e) => [e.t, e.n, e.p]),
    [
      ["t", "Add to cart", { sku: "42", price: 59.9 }],
      ["t", "Checkout", undefined],
      ["t", "Paid", { total: 59.9 }],
    ],
  );
  assert.equal(new Set(p.sent.map((e) => e.i)).size, 3, "every event has its own id");
  assert.equal(new Set(p.sent.map((e) => e.a)).size, 1, "one anonymous id per browser");
});

test("a long queue drains in batches", async () => {
  const p = new Page();
  p.respond = () => new Error("offline");
  init(p, { batch: 2, auto: false });
  for (let i = 0; i < 5; i++) p.crow.track("e" + i);
  await settle();
  p.respond = () => 200;
  while (p.pending.length) await p.tick();
  const names = p.fetches.filter((f, i) => i > 0).flatMap((f) => f.body.b.map((e) => e.n));
  assert.deepEqual(names, ["e0", "e1", "e2", "e3", "e4"]);
  assert.ok(p.fetches.every((f) => f.body.b.length <= 2));
  assert.deepEqual(p.state.q, []);
});

test("5xx, 408, 429 and network errors are retried with jittered exponential backoff, same ids", async () => {
  const p = new Page();
  const answers = [503, 500, new Error("network"), 429, 408, 200];
  p.respond = () => answers.shift();
  init(p, { wait: 100, auto: false });
  p.crow.track("Signed up");
  const delays = [];
  while (p.pending.length) delays.push(await p.tick());
  assert.equal(p.fetches.length, 6);
  assert.equal(new Set(p.fetches.map((f) => f.body.b[0].i)).size, 1, "a retry resends the same event id");
  assert.equal(delays[0], 100, "the first send waits for the batch timer");
  delays.slice(1).forEach((ms, i) => {
    const base = 100 * 2 ** (i + 1);
    assert.ok(ms >= base * 0.5 && ms < base * 1.5, `retry ${i + 1} after ${ms} ms, expected ${base} ms ± 50 %`);
  });
  assert.deepEqual(p.state.q, []);
});

test("the backoff is capped at 5 minutes (plus jitter) and new events wait for it", async () => {
  const p = new Page();
  p.respond = () => 503;
  init(p, { wait: 1000, auto: false, batch: 1 });
  p.crow.track("x");
  await settle();
  let last = 0;
  for (let i = 0; i < 12; i++) last = await p.tick();
  assert.ok(last >= 150_000 && last < 450_000, `${last}`);
  const before = p.fetches.length;
  p.crow.track("y"); // a full batch, but we are backing off
  await settle();
  assert.equal(p.fetches.length, before, "no send outside the backoff schedule");
});

test("a 4xx other than 408/429 drops the batch instead of blocking the queue", async () => {
  const p = new Page();
  p.respond = () => 401;
  init(p, { auto: false });
  p.crow.track("x");
  await p.tick();
  assert.equal(p.fetches.length, 1);
  assert.deepEqual(p.state.q, []);
  assert.equal(p.pending.length, 0, "no retry");
});

test("the queue's bound drops the oldest events, counts them, and the next send reports the count", async () => {
  const p = new Page();
  p.respond = () => new Error("offline");
  init(p, { max: 3, auto: false, batch: 10 });
  for (let i = 0; i < 5; i++) p.crow.track("e" + i);
  assert.deepEqual(
    p.state.q.map((e) => e.n),
    ["e2", "e3", "e4"],
  );
  assert.equal(p.state.d, 2);
  p.respond = () => 200;
  await p.fire("online");
  const last = p.fetches.at(-1).body;
  assert.equal(last.dr, 2);
  assert.deepEqual(
    last.b.map((e) => e.n),
    ["e2", "e3", "e4"],
  );
  assert.equal(p.state.d, 0, "a confirmed report resets the count");
});

test("events survive a reload and are sent by the next page", async () => {
  const storage = {};
  const a = new Page({ storage });
  a.respond = () => new Error("offline");
  init(a, { auto: false });
  a.crow.track("kept");
  await a.tick();
  const b = new Page({ storage });
  init(b, { auto: false });
  await settle();
  assert.deepEqual(
    b.sent.map((e) => e.n),
    ["kept"],
  );
  assert.equal(b.sent[0].i, a.fetches[0].body.b[0].i, "the same id, so the server stores it once");
});

test("two tabs sharing localStorage never remove each other's unsent events", async () => {
  const storage = {};
  const a = new Page({ storage });
  const b = new Page({ storage });
  a.respond = () => new Error("offline");
  init(a, { auto: false, batch: 1 });
  init(b, { auto: false, batch: 2 });
  a.crow.track("from a");
  await settle();
  let release;
  b.respond = () => new Promise((r) => (release = r));
  b.crow.track("from b"); // b sends both queued events
  await settle();
  a.crow.track("from a, later"); // written while b's send is in flight
  release(200);
  await settle();
  assert.deepEqual(
    JSON.parse(storage.crow).q.map((e) => e.n),
    ["from a, later"],
  );
});

test("pagehide and visibilitychange hand the queue to sendBeacon; it stays queued until confirmed", async () => {
  const p = new Page();
  init(p, { auto: false });
  p.crow.track("Read article");
  await p.fire("visibilitychange");
  await p.fire("pagehide");
  assert.equal(p.beacons.length, 2);
  assert.equal(p.beacons[0].url, `${HOST}/api/v1/events`);
  assert.equal(p.beacons[0].body.k, KEY);
  assert.deepEqual(
    p.beacons[0].body.b.map((e) => e.n),
    ["Read article"],
  );
  assert.equal(p.state.q.length, 1);
  await p.tick();
  assert.equal(p.fetches[0].body.b[0].i, p.beacons[0].body.b[0].i);
  assert.deepEqual(p.state.q, []);
  await p.fire("pagehide");
  assert.equal(p.beacons.length, 2, "nothing to beacon");
});

test("single-page apps: pushState, replaceState and popstate count pages when the URL changes", async () => {
  const p = new Page({ href: "https://shop.example/" });
  p.respond = () => new Error("offline");
  init(p, { batch: 100 });
  const h = p.window.history;
  h.pushState({}, "", "/products");
  h.pushState({ tab: 2 }, "", "/products"); // same URL: no page view
  h.replaceState({}, "", "/products?sort=price"); // a new URL: a page view
  h.replaceState({ scroll: 300 }, ""); // state only: none
  h.pushState({}, "", "/products?sort=price#reviews"); // fragment only: none
  p.location.href = "https://shop.example/";
  await p.fire("popstate"); // back
  const pages = p.state.q.filter((e) => e.t == "p").map((e) => e.c.u);
  assert.deepEqual(pages, [
    "https://shop.example/",
    "https://shop.example/products",
    "https://shop.example/products?sort=price",
    "https://shop.example/",
  ]);
});

test("auto: false disables automatic page views; page() still records one", () => {
  const p = new Page();
  init(p, { auto: false });
  p.window.history.pushState({}, "", "/next");
  assert.equal(p.state, undefined, "nothing recorded, nothing stored");
  p.crow.page();
  assert.equal(p.state.q[0].t, "p");
});

test("identify attaches the user id to later events; reset forgets both ids", async () => {
  const p = new Page();
  init(p, { auto: false, batch: 100 });
  p.crow.track("before");
  p.crow.identify("user-7", { plan: "pro" });
  p.crow.track("after");
  const anon = p.state.a;
  const q = p.state.q;
  assert.deepEqual(
    q.map((e) => [e.t, e.u ?? null, e.a]),
    [
      ["t", null, anon],
      ["i", "user-7", anon],
      ["t", "user-7", anon],
    ],
  );
  assert.deepEqual(q[1].p, { plan: "pro" });
  p.crow.reset();
  p.crow.track("logged out");
  const e = p.state.q.at(-1);
  assert.equal(e.u ?? null, null);
  assert.notEqual(e.a, anon);
});

test("consent required: nothing is stored or sent before optIn; optOut forgets everything", async () => {
  const p = new Page();
  init(p, { consent: true });
  p.crow.track("x");
  p.crow.identify("user-7");
  await p.fire("pagehide");
  assert.equal(p.state, undefined, "nothing is written to localStorage");
  assert.equal(p.fetches.length + p.beacons.length + p.pending.length, 0);
  p.crow.optIn();
  assert.deepEqual(
    p.state.q.map((e) => e.t),
    ["p"],
    "opting in records the current page",
  );
  await p.tick();
  assert.equal(p.fetches.length, 1);
  p.crow.track("y");
  p.crow.optOut();
  assert.deepEqual(p.state, { q: [], c: 0 }, "queue and ids are gone; the choice is remembered");
  p.crow.track("z");
  while (p.pending.length) await p.tick();
  assert.equal(p.fetches.length, 1, "nothing more is sent");
  // The choice survives a reload.
  const again = new Page({ storage: p.storage });
  init(again);
  again.crow.track("w");
  assert.deepEqual(again.state.q, []);
});

for (const [name, nav] of [
  ["Do-Not-Track", { doNotTrack: "1" }],
  ["Global Privacy Control", { globalPrivacyControl: true }],
]) {
  test(`${name} suppresses sending and storing; an explicit optIn overrides it`, async () => {
    const p = new Page({ nav });
    init(p);
    p.crow.track("x");
    await p.fire("pagehide");
    assert.equal(p.state, undefined);
    assert.equal(p.fetches.length + p.beacons.length, 0);
    p.crow.optIn();
    p.crow.track("y");
    await p.tick();
    assert.deepEqual(
      p.sent.map((e) => e.n ?? e.t),
      ["p", "y"],
    );
  });
}

test("works in memory when localStorage throws (private modes, sandboxed frames)", async () => {
  const p = new Page({ brokenStorage: true });
  init(p);
  p.crow.identify("user-1");
  await settle();
  await p.crow.flush();
  const [page, id] = p.sent;
  assert.equal(page.t, "p");
  assert.equal(id.u, "user-1");
  assert.equal(page.a, id.a);
});

test("a <script data-key> tag initializes itself with its own origin as the host", async () => {
  const p = new Page({ script: { dataset: { key: KEY }, src: "https://crow.example:8787/sdk/crow.js" } });
  await p.tick();
  assert.equal(p.fetches[0].url, "https://crow.example:8787/api/v1/events");
  assert.equal(p.fetches[0].body.k, KEY);
});

test("reads no cookie, no form and no fingerprinting surface", async () => {
  const p = new Page();
  init(p);
  p.crow.track("x", { a: 1 });
  p.crow.identify("u");
  await p.fire("pagehide");
  await p.tick();
  assert.deepEqual([...p.touched.document].sort(), ["currentScript", "referrer", "title"]);
  assert.deepEqual([...p.touched.navigator].sort(), ["doNotTrack", "globalPrivacyControl", "language", "sendBeacon"]);
});

test("calls before init and history changes before init are harmless", async () => {
  const p = new Page();
  p.crow.track("early");
  p.window.history.pushState({}, "", "/x");
  await p.fire("popstate");
  await p.fire("online");
  await p.fire("pagehide");
  assert.equal(p.state, undefined);
  assert.equal(p.fetches.length + p.beacons.length, 0);
});
