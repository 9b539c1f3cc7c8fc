// crow.js against posthog-js (the named peer), side by side in one run: transfer size, the
// main thread's cost to start the SDK and to record an event, and bytes on the wire per event.
// Both run in the same headless Chromium against the same `crow serve`.
//
//   CROW_BIN=target/release/crow node bench/bench.mjs     (or `make bench-sdk`)
import { spawn, execFileSync } from "node:child_process";
import { createServer } from "node:http";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync, brotliCompressSync, constants } from "node:zlib";
import { chromium } from "playwright-core";

const BIN = process.env.CROW_BIN || new URL("../../../target/release/crow", import.meta.url).pathname;
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"];
const LOADS = Number(process.env.LOADS || 15);
// Events recorded in one synchronous burst: one batch, and a burst that outruns the sends.
const BURSTS = (process.env.BURSTS || "20,200").split(",").map(Number);

const crowJs = readFileSync(new URL("../dist/crow.min.js", import.meta.url), "utf8");
const posthogJs = readFileSync(new URL("../node_modules/posthog-js/dist/array.js", import.meta.url), "utf8");
const posthogVersion = JSON.parse(readFileSync(new URL("../node_modules/posthog-js/package.json", import.meta.url))).version;

const gz = (s) => gzipSync(s, { level: 9 }).length;
const br = (s) => brotliCompressSync(s, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (n, d = 2) => n.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d });

const tmp = mkdtempSync(join(tmpdir(), "crow-sdk-bench-"));
const data = join(tmp, "data");
const keys = JSON.parse(execFileSync(BIN, ["--data", data, "org", "create", "bench", "--json"], { encoding: "utf8" }));
const crow = spawn(BIN, ["--data", data, "--models", join(tmp, "none"), "serve", "--addr", "127.0.0.1:0"], { stdio: ["ignore", "ignore", "pipe"] });
const base = await new Promise((resolve, reject) => {
  let log = "";
  crow.stderr.on("data", (c) => {
    log += c;
    const m = log.match(/listening on http:\/\/(\S+)\s/); // a whole address: stderr arrives in chunks
    if (m) resolve(`http://${m[1]}`);
  });
  crow.on("exit", (code) => reject(new Error(`crow serve exited ${code}: ${log}`)));
});

// The SDKs are inlined in the page, so the timings are parse + compile + run, not the network.
const page = (sdk) => {
  if (sdk === "crow")
    return `<script>window.t0=performance.now()</script><script>${crowJs}</script>
      <script>crow.init({key:${JSON.stringify(keys.write_key)},host:${JSON.stringify(base)}});window.t1=performance.now()</script>`;
  return `<script>window.t0=performance.now()</script><script>${posthogJs}</script>
    <script>posthog.init(${JSON.stringify(keys.write_key)},{api_host:${JSON.stringify(base)},autocapture:false,
      disable_session_recording:true,disable_surveys:true,opt_out_useragent_filter:true});window.t1=performance.now()</script>`;
};
const server = createServer((req, res) => {
  const sdk = new URL(req.url, "http://x").searchParams.get("sdk");
  res.writeHead(200, { "content-type": "text/html" });
  res.end(`<!doctype html><title>Bench</title>${page(sdk)}<body>bench</body>`);
});
await new Promise((r) => server.listen(0, "127.0.0.1", r));
const origin = `http://127.0.0.1:${server.address().port}`;

const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
const results = {};
for (const sdk of ["crow", "posthog"]) {
  const start = [];
  for (let i = 0; i < LOADS; i++) {
    const ctx = await browser.newContext();
    const p = await ctx.newPage();
    await p.goto(`${origin}/?sdk=${sdk}`);
    start.push(await p.evaluate(() => window.t1 - window.t0));
    await ctx.close();
  }
  results[sdk] = { start: median(start), bursts: {} };
  for (const EVENTS of BURSTS) {
    // Events: EVENTS calls on the main thread, then the bytes the SDK puts on the wire for them.
    const ctx = await browser.newContext();
    const p = await ctx.newPage();
    let wire = 0;
    let requests = 0;
    p.on("request", (r) => {
      if (r.method() === "POST" && r.url().startsWith(base)) {
        wire += r.postDataBuffer()?.length || 0;
        requests++;
      }
    });
    await p.goto(`${origin}/?sdk=${sdk}`);
    await p.waitForTimeout(1500);
    [wire, requests] = [0, 0];
    const call =
      sdk === "crow"
        ? (n) => crow.track("Viewed product", { sku: "sku-" + n, price: 59.9, list: "search results" })
        : (n) => posthog.capture("Viewed product", { sku: "sku-" + n, price: 59.9, list: "search results" });
    const perEventMs = await p.evaluate(
      ([src, n]) => {
        const f = eval(src);
        const t = performance.now();
        for (let i = 0; i < n; i++) f(i);
        return (performance.now() - t) / n;
      },
      [call.toString(), EVENTS],
    );
    await p.waitForTimeout(6000); // both flush within a few seconds
    results[sdk].bursts[EVENTS] = { perEventUs: perEventMs * 1000, wirePerEvent: wire / EVENTS, requests };
    await ctx.close();
  }
}
await browser.close();
server.close();
crow.kill("SIGTERM");
rmSync(tmp, { recursive: true, force: true });

const size = {
  crow: { min: crowJs.length, gz: gz(crowJs), br: br(crowJs) },
  posthog: { min: posthogJs.length, gz: gz(posthogJs), br: br(posthogJs) },
};
const c = results.crow;
const ph = results.posthog;
console.log(`crow.js vs posthog-js ${posthogVersion} (dist/array.js), headless Chromium, ${LOADS} page loads\n`);
console.log("| | crow.js | posthog-js | posthog-js ÷ crow.js |");
console.log("|---|---|---|---|");
console.log(`| minified | ${size.crow.min.toLocaleString()} B | ${size.posthog.min.toLocaleString()} B | ${fmt(size.posthog.min / size.crow.min, 0)}× |`);
console.log(`| gzip -9 | ${size.crow.gz.toLocaleString()} B | ${size.posthog.gz.toLocaleString()} B | ${fmt(size.posthog.gz / size.crow.gz, 0)}× |`);
console.log(`| brotli 11 | ${size.crow.br.toLocaleString()} B | ${size.posthog.br.toLocaleString()} B | ${fmt(size.posthog.br / size.crow.br, 0)}× |`);
console.log(`| start: parse, compile, init (median) | ${fmt(c.start)} ms | ${fmt(ph.start)} ms | ${fmt(ph.start / c.start, 1)}× |`);
for (const n of BURSTS) {
  const [a, b] = [c.bursts[n], ph.bursts[n]];
  console.log(`| main thread per event, burst of ${n} | ${fmt(a.perEventUs, 1)} µs | ${fmt(b.perEventUs, 1)} µs | ${fmt(b.perEventUs / a.perEventUs, 1)}× |`);
  console.log(`| request body bytes per event, burst of ${n} | ${fmt(a.wirePerEvent, 0)} B (JSON) | ${fmt(b.wirePerEvent, 0)} B (gzip) | ${fmt(b.wirePerEvent / a.wirePerEvent, 2)}× |`);
  console.log(`| requests for a burst of ${n} | ${a.requests} | ${b.requests} | |`);
}
