// Shared by the node --test suites: CROW's migrations applied to a local D1 (as `wrangler d1
// migrations apply` does it for `wrangler dev`), the Worker bundled as it deploys
// (`wrangler deploy --dry-run`), and Miniflare options for both.
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const workerDir = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const DB_ID = "00000000-0000-0000-0000-000000000000";
export const COMPATIBILITY_DATE = "2026-04-20";

function wrangler(args) {
  return execFileSync(join(workerDir, "node_modules", ".bin", "wrangler"), args, {
    cwd: workerDir,
    encoding: "utf8",
    env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "1", NO_COLOR: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
}

/** A temp dir with CROW's migrations applied to the `DB` database; remove it with `dispose`. */
export function migratedState() {
  const dir = mkdtempSync(join(tmpdir(), "crow-worker-test-"));
  wrangler(["d1", "migrations", "apply", "crow", "--local", "--env", "test", "--persist-to", dir]);
  return { dir, d1Persist: join(dir, "v3", "d1"), dispose: () => rmSync(dir, { recursive: true, force: true }) };
}

/** True when build/ holds the Worker (`node build.mjs`). */
export function isBuilt() {
  return existsSync(join(workerDir, "build", "crow_worker_bg.wasm")) && existsSync(join(workerDir, "build", "crow_worker.js"));
}

/**
 * The Worker bundled as `wrangler deploy --env test` would upload it, in a temp dir: the path
 * of its entry script.
 */
export function bundle(outDir) {
  wrangler(["deploy", "--dry-run", "--env", "test", "--outdir", outDir]);
  return join(outDir, "entry.js");
}

/** Why a suite that needs the built Worker skips, or undefined when it can run. */
export function skipUnlessBuilt() {
  if (isBuilt()) return undefined;
  if (process.env.CROW_REQUIRE_WORKER) throw new Error("the Worker is not built: run `node build.mjs` first");
  return "the Worker is not built (node build.mjs)";
}

/** The JSON (or text) answers of a Miniflare-hosted Worker: `{status, headers, body}`. */
export function jsonClient(getMf, base = "http://crow.test") {
  async function fetchJson(path, init = {}) {
    const r = await getMf().dispatchFetch(`${base}${path}`, init);
    const text = await r.text();
    let body;
    try {
      body = JSON.parse(text);
    } catch {
      body = text;
    }
    return { status: r.status, headers: r.headers, body };
  }
  const post = (path, body, headers = {}) =>
    fetchJson(path, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) });
  return { fetchJson, post };
}

/** CROW's job queues, each with its Cloudflare Queue (a doorbell; the jobs are rows in D1). */
export const JOB_QUEUES = ["interaction", "social", "processing", "export"];

/** Miniflare's producers and consumers for the four job queues, as wrangler.toml declares them. */
export function queueOptions() {
  return {
    queueProducers: Object.fromEntries(JOB_QUEUES.map((q) => [`JOBS_${q.toUpperCase()}`, { queueName: `crow-${q}` }])),
    queueConsumers: Object.fromEntries(JOB_QUEUES.map((q) => [`crow-${q}`, { maxBatchSize: 100, maxBatchTimeout: 1 }])),
  };
}
