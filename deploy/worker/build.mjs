// Builds the Worker bundle into build/: cargo (profile `worker`) → wasm-bindgen --target web →
// wasm-opt -Oz, then checks the gzip size of what is uploaded against Cloudflare's 3 MB limit.
//
//   node build.mjs                  (WASM_BINDGEN: the wasm-bindgen CLI, default `wasm-bindgen`;
//                                     CARGO_TARGET_DIR respected; SKIP_WASM_OPT=1 skips wasm-opt)
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "../..");
const budget = 3_000_000;

function run(cmd, args, opts = {}) {
  console.log(`> ${cmd} ${args.join(" ")}`);
  return execFileSync(cmd, args, { stdio: "inherit", cwd: here, ...opts });
}

function fail(message) {
  console.error(`build.mjs: ${message}`);
  process.exit(1);
}

// The wasm-bindgen CLI must be the version Cargo.lock resolved the library to.
const lock = readFileSync(join(root, "Cargo.lock"), "utf8");
const locked = /\[\[package\]\]\nname = "wasm-bindgen"\nversion = "([^"]+)"/.exec(lock)?.[1];
if (!locked) fail("Cargo.lock has no wasm-bindgen package");
const bindgen = process.env.WASM_BINDGEN || "wasm-bindgen";
let cliVersion;
try {
  cliVersion = execFileSync(bindgen, ["--version"], { encoding: "utf8" }).trim().split(/\s+/)[1];
} catch (e) {
  fail(`cannot run ${bindgen} (${e.message}); install it with
  cargo install wasm-bindgen-cli --version =${locked} --locked --root <dir> and set WASM_BINDGEN=<dir>/bin/wasm-bindgen`);
}
if (cliVersion !== locked) {
  fail(`${bindgen} is version ${cliVersion}, but Cargo.lock has wasm-bindgen ${locked}: install wasm-bindgen-cli ${locked}`);
}

// 1. The wasm.
const targetDir = process.env.CARGO_TARGET_DIR ? resolve(process.env.CARGO_TARGET_DIR) : join(root, "target");
run("cargo", ["build", "-p", "crow-worker", "--target", "wasm32-unknown-unknown", "--profile", "worker"], { cwd: root });
const wasmIn = join(targetDir, "wasm32-unknown-unknown", "worker", "crow_worker.wasm");
if (!existsSync(wasmIn)) fail(`cargo did not produce ${wasmIn}`);

// 2. The JS bindings.
const out = join(here, "build");
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
run(bindgen, ["--target", "web", "--out-dir", out, "--no-typescript", wasmIn]);
const wasmOut = join(out, "crow_worker_bg.wasm");

// 3. Smaller wasm. wasm-opt reads the features rustc used from the module's target_features
// section; the flags below cover what rustc's wasm32 baseline emits.
if (process.env.SKIP_WASM_OPT !== "1") {
  const before = statSync(wasmOut).size;
  const wasmOpt = join(here, "node_modules", ".bin", "wasm-opt");
  if (!existsSync(wasmOpt)) fail("node_modules/.bin/wasm-opt is missing: run `npm ci` in deploy/worker");
  run(wasmOpt, [
    "-Oz",
    "--enable-bulk-memory",
    "--enable-nontrapping-float-to-int",
    "--enable-sign-ext",
    "--enable-mutable-globals",
    "--enable-multivalue",
    "--enable-reference-types",
    "--strip-debug",
    "--strip-producers",
    "--strip-target-features",
    wasmOut,
    "-o",
    wasmOut,
  ]);
  console.log(`wasm-opt: ${before} → ${statSync(wasmOut).size} bytes`);
}

// 4. The budget: gzip -9 of everything uploaded (the wasm, the bindings, the entry and glue).
const files = [
  ...readdirSync(out)
    .filter((f) => f.endsWith(".wasm") || f.endsWith(".js"))
    .map((f) => join(out, f)),
  ...readdirSync(join(here, "js"))
    .filter((f) => f.endsWith(".mjs"))
    .map((f) => join(here, "js", f)),
];
let raw = 0;
let gz = 0;
for (const f of files) {
  const bytes = readFileSync(f);
  const z = gzipSync(bytes, { level: 9 }).length;
  raw += bytes.length;
  gz += z;
  console.log(`  ${f.slice(here.length + 1).padEnd(28)} ${String(bytes.length).padStart(9)} B  gzip ${String(z).padStart(9)} B`);
}
console.log(`bundle: ${raw} bytes, gzip -9 ${gz} bytes (budget ${budget})`);
if (gz > budget) {
  fail(`the bundle is ${gz} bytes gzipped, over Cloudflare's ${budget}-byte limit: cut features or code`);
}
