// Builds dist/crow.min.js from src/crow.js with terser (about 1 % smaller than esbuild here) and prints its minified and gzipped
// sizes. `node build.mjs --check` also fails when the gzipped size exceeds the 1,024-byte budget
// or when the committed dist/crow.min.js differs from a fresh build.
import { minify } from "terser";
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { gzipSync } from "node:zlib";

const BUDGET = 1024;
const check = process.argv.includes("--check");
const out = new URL("./dist/crow.min.js", import.meta.url);
const source = readFileSync(new URL("./src/crow.js", import.meta.url), "utf8");
// ES2020 (optional chaining, ??, async): every browser since 2020 (Chrome 85, Firefox 79, Safari 14).
const { code } = await minify(source, { ecma: 2020, compress: { passes: 3 }, mangle: true, format: { comments: false } });
const gz = gzipSync(code, { level: 9 }).length;
console.log(`crow.js: ${code.length} bytes minified, ${gz} bytes gzipped (budget ${BUDGET})`);
let failed = false;
if (gz > BUDGET) {
  console.error(`crow.js is ${gz - BUDGET} bytes over its ${BUDGET}-byte gzipped budget`);
  failed = true;
}
let committed = "";
try {
  committed = readFileSync(out, "utf8");
} catch {}
if (check && committed !== code) {
  console.error("dist/crow.min.js is stale: run `make sdk` and commit it (the crates embed that file)");
  failed = true;
}
if (!check) {
  mkdirSync(new URL("./dist/", import.meta.url), { recursive: true });
  writeFileSync(out, code);
}
process.exit(failed ? 1 : 0);
