// The JS glue (js/glue.mjs) against D1 and R2 as workerd runs them, through a small test Worker
// that calls a glue function per request.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Miniflare } from "miniflare";

import { errorMessage } from "../js/glue.mjs";
import { COMPATIBILITY_DATE, DB_ID, migratedState, workerDir } from "./support.mjs";

const RPC = `
import * as glue from "./glue.mjs";
const arg = (env, a) => a === "$DB" ? env.DB : a === "$BLOBS" ? env.BLOBS : a && a.$bytes ? new Uint8Array(a.$bytes) : a;
export default {
  async fetch(request, env) {
    const { fn, args } = await request.json();
    try {
      const resolved = args.map((a) => arg(env, a));
      let out = await glue[fn](...resolved);
      if (fn === "fillRandom") out = resolved[0];
      if (out instanceof Uint8Array) out = { $bytes: Array.from(out) };
      return Response.json({ ok: out === undefined ? null : out });
    } catch (e) {
      return Response.json({ err: glue.errorMessage(e) });
    }
  },
};`;

let state;
let mf;

async function call(fn, ...args) {
  const r = await mf.dispatchFetch("http://glue.test/", { method: "POST", body: JSON.stringify({ fn, args }) });
  return r.json();
}
const query = async (sql, params = []) => {
  const r = await call("d1Query", "$DB", sql, JSON.stringify(params));
  if (r.err) throw new Error(r.err);
  return JSON.parse(r.ok);
};
const batch = async (stmts) => {
  const r = await call("d1Batch", "$DB", JSON.stringify(stmts));
  if (r.err) throw new Error(r.err);
  return JSON.parse(r.ok);
};

before(async () => {
  state = migratedState();
  mf = new Miniflare({
    modules: [
      { type: "ESModule", path: join(workerDir, "test", "rpc.mjs"), contents: RPC },
      { type: "ESModule", path: join(workerDir, "test", "glue.mjs"), contents: readFileSync(join(workerDir, "js", "glue.mjs"), "utf8") },
    ],
    compatibilityDate: COMPATIBILITY_DATE,
    d1Databases: { DB: DB_ID },
    d1Persist: state.d1Persist,
    r2Buckets: ["BLOBS"],
  });
  await mf.ready;
});

after(async () => {
  await mf?.dispose();
  state?.dispose();
});

describe("D1 glue", () => {
  test("the migrations are applied", async () => {
    const rows = await query("SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('organizations', 'jobs', 'interactions') ORDER BY name");
    assert.deepEqual(rows, [["interactions"], ["jobs"], ["organizations"]]);
  });

  test("queries bind every kind and answer positional rows", async () => {
    const rows = await query("SELECT ?1 AS a, ?2 AS b, ?3 AS c, ?4 AS d, ?5 AS e, typeof(?5) AS f, ?1 + 1 AS g", [
      42,
      1.5,
      "it's",
      null,
      { b: Buffer.from([0, 1, 255]).toString("base64") },
    ]);
    assert.deepEqual(rows, [[42, 1.5, "it's", null, [0, 1, 255], "blob", 43]]);
  });

  test("an integer beyond 2^53 bound as text is stored exactly and read back as text", async () => {
    await batch([
      { sql: "CREATE TABLE IF NOT EXISTS t_big (v INTEGER)", params: [] },
      { sql: "INSERT INTO t_big VALUES (?1)", params: ["9223372036854775807"] },
    ]);
    assert.deepEqual(await query("SELECT typeof(v), CAST(v AS TEXT) FROM t_big"), [["integer", "9223372036854775807"]]);
  });

  test("a batch reports changes, carries changes() across statements and returns RETURNING rows", async () => {
    await batch([{ sql: "CREATE TABLE IF NOT EXISTS t_b (id TEXT PRIMARY KEY, n INTEGER, data BLOB)", params: [] }]);
    const out = await batch([
      {
        sql: "INSERT OR IGNORE INTO t_b (id, n, data) SELECT value, 1, ?2 FROM json_each(?1) RETURNING id AS id, n AS n, data AS data",
        params: ['["a","b"]', { b: Buffer.from([7, 8]).toString("base64") }],
      },
      { sql: "INSERT INTO t_b (id, n) SELECT 'marker', changes() WHERE changes() > 0", params: [] },
      { sql: "UPDATE t_b SET n = n + 1 WHERE id IN ('a', 'b', 'zzz')", params: [] },
      { sql: "SELECT id AS id, n AS n FROM t_b ORDER BY id", params: [] },
    ]);
    assert.equal(out.length, 4);
    assert.equal(out[0].changes, 2);
    assert.deepEqual(
      out[0].rows.sort((x, y) => x[0].localeCompare(y[0])),
      [["a", 1, [7, 8]], ["b", 1, [7, 8]]],
    );
    assert.equal(out[1].changes, 1);
    assert.equal(out[2].changes, 2);
    assert.deepEqual(out[3].rows, [["a", 2], ["b", 2], ["marker", 2]]);
  });

  test("a batch is all or nothing", async () => {
    await batch([{ sql: "CREATE TABLE IF NOT EXISTS t_atomic (id INTEGER PRIMARY KEY)", params: [] }]);
    await assert.rejects(
      batch([
        { sql: "INSERT INTO t_atomic VALUES (1)", params: [] },
        { sql: "INSERT INTO t_atomic VALUES (1)", params: [] },
      ]),
      /constraint|SQLITE_CONSTRAINT/i,
    );
    assert.deepEqual(await query("SELECT count(*) FROM t_atomic"), [[0]]);
  });

  test("a constraint violation names itself (the Rust side maps it to Conflict)", async () => {
    const orgs = [{ sql: "INSERT INTO organizations (id, name, created_at) VALUES ('org_dup', 'A', 1)", params: [] }];
    await batch(orgs);
    const r = await call("d1Batch", "$DB", JSON.stringify(orgs));
    assert.match(r.err, /SQLITE_CONSTRAINT|constraint failed/);
    const bad = await call("d1Query", "$DB", "SELECT * FROM no_such_table", "[]");
    assert.match(bad.err, /no such table/);
    assert.doesNotMatch(bad.err, /SQLITE_CONSTRAINT|constraint failed/);
  });
});

describe("R2 glue", () => {
  test("put, get, list with paging, delete", async () => {
    const bytes = [0, 1, 2, 250, 255];
    assert.equal((await call("r2Put", "$BLOBS", "exports/a.bin", { $bytes: bytes })).ok, null);
    assert.deepEqual((await call("r2Get", "$BLOBS", "exports/a.bin")).ok, { $bytes: bytes });
    assert.equal((await call("r2Get", "$BLOBS", "exports/missing")).ok, null);
    for (const k of ["exports/b", "exports/c", "raw/x"]) await call("r2Put", "$BLOBS", k, { $bytes: [1] });
    // A page of 2 keys forces the cursor loop.
    const listed = JSON.parse((await call("r2List", "$BLOBS", "exports/", 2)).ok);
    assert.deepEqual(listed.sort(), ["exports/a.bin", "exports/b", "exports/c"]);
    assert.equal((await call("r2Delete", "$BLOBS", "exports/a.bin")).ok, null);
    assert.equal((await call("r2Delete", "$BLOBS", "exports/a.bin")).ok, null);
    assert.deepEqual(JSON.parse((await call("r2List", "$BLOBS", "exports/")).ok).sort(), ["exports/b", "exports/c"]);
  });

});

describe("other glue", () => {
  test("fillRandom fills from the CSPRNG", async () => {
    const a = (await call("fillRandom", { $bytes: new Array(64).fill(0) })).ok.$bytes;
    const b = (await call("fillRandom", { $bytes: new Array(64).fill(0) })).ok.$bytes;
    assert.equal(a.length, 64);
    assert.notDeepEqual(a, b);
    assert.ok(a.some((x) => x !== 0));
  });

  test("errorMessage follows causes without repeating them", async () => {
    assert.equal((await call("errorMessage", "plain")).ok, "plain");
    const e = new Error("D1_ERROR: UNIQUE constraint failed: t.id", { cause: new Error("UNIQUE constraint failed: t.id: SQLITE_CONSTRAINT") });
    assert.equal(errorMessage(e), "D1_ERROR: UNIQUE constraint failed: t.id: UNIQUE constraint failed: t.id: SQLITE_CONSTRAINT");
    assert.equal(errorMessage(new Error("same", { cause: new Error("same") })), "same");
  });
});
