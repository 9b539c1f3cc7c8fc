// CROW's Cloudflare Worker: the JS entry around the crow-worker wasm module (see
// deploy/worker/src/lib.rs for why a small entry and not workers-rs). Requests, Queue batches
// and Cron events go to Rust as plain values; responses come back as {status, headers, body,
// ring}, where `ring` names the job queues to ring (a Queue message is only a doorbell: the jobs
// themselves are rows in D1).
import { WorkflowEntrypoint } from "cloudflare:workers";
import wasm from "../build/crow_worker_bg.wasm";
import { initSync, handle_fetch, handle_queue, handle_scheduled, run_job } from "../build/crow_worker.js";

// workerd refuses to compile wasm from bytes at run time: wrangler bundles the module compiled.
initSync({ module: wasm });

const NO_BODY = new Set([101, 204, 205, 304]);

/**
 * Sends doorbells, best effort (the Cron sweep catches any that get lost): one message on the
 * Cloudflare Queue of each CROW job queue named, `JOBS_INTERACTION`, `JOBS_SOCIAL`,
 * `JOBS_PROCESSING` or `JOBS_EXPORT`.
 */
function ring(env, ctx, queues) {
  for (const queue of new Set(queues ?? [])) {
    const producer = env[`JOBS_${queue.toUpperCase()}`];
    if (!producer) continue;
    const send = producer.send({ queue }).catch((e) => console.warn(`crow: could not ring the ${queue} queue:`, e?.message ?? e));
    if (ctx?.waitUntil) ctx.waitUntil(send);
  }
}

export default {
  async fetch(request, env, ctx) {
    const url = new URL(request.url);
    const body = request.method === "GET" || request.method === "HEAD" ? new Uint8Array(0) : new Uint8Array(await request.arrayBuffer());
    const r = await handle_fetch(
      env,
      request.method,
      url.pathname,
      url.search.slice(1),
      JSON.stringify([...request.headers]),
      body,
      request.headers.get("cf-connecting-ip") ?? "",
    );
    ring(env, ctx, r.ring);
    const empty = NO_BODY.has(r.status) || request.method === "HEAD" || r.body.length === 0;
    return new Response(empty ? null : r.body, { status: r.status, headers: r.headers });
  },

  async queue(batch, env, ctx) {
    const named = [...new Set(batch.messages.map((m) => m.body?.queue).filter((q) => typeof q === "string"))];
    const report = JSON.parse(await handle_queue(env, named));
    if (report.errors.length) console.warn("crow: queue sweep errors:", report.errors);
    // Work left (time or D1 statement budget spent): ring again so another invocation goes on.
    ring(env, ctx, report.more);
    batch.ackAll();
  },

  async scheduled(event, env, ctx) {
    ctx.waitUntil(
      handle_scheduled(env, event.cron, event.scheduledTime).then((r) => {
        const report = JSON.parse(r);
        if (report.errors.length) console.warn("crow: cron sweep errors:", report.errors);
        ring(env, ctx, report.more);
      }),
    );
  },
};

/**
 * The `export-report` Workflow (binding `EXPORT_WF`): the queue sweep leases each export job and
 * starts one instance per delivery with the job as its params. Its one step runs the job with
 * crow-ingest's workflow (the same function the native server runs), which writes the file to
 * R2 and acks the job, or fails it under CROW's retry policy (the job then comes back through
 * the queue with a new instance, and resumes from its D1 step log). The step itself is not
 * retried by the platform, so CROW's policy is the only one.
 */
export class ExportReport extends WorkflowEntrypoint {
  async run(event, step) {
    return await step.do("export-report", { retries: { limit: 0, delay: "1 second" }, timeout: "30 minutes" }, async () =>
      JSON.parse(await run_job(this.env, JSON.stringify(event.payload.job))),
    );
  }
}
