// A Workers AI stand-in for Miniflare's `wrappedBindings` (Workers AI cannot run locally): `run`
// for the two models crow-worker calls.
// - `@cf/baai/bge-small-en-v1.5`: `{text: [..]}` → `{shape, data}`, a deterministic embedding
//   (a hashed bag of words in 384 dimensions, L2-normalized), so texts sharing words are close.
// - `@cf/huggingface/distilbert-sst-2-int8`: `{text}` → `[{label, score}]` from a few words.
export const EMBED_MODEL = "@cf/baai/bge-small-en-v1.5";
export const SENTIMENT_MODEL = "@cf/huggingface/distilbert-sst-2-int8";
const DIM = 384;
const POSITIVE = new Set(["love", "great", "excellent", "good", "amazing", "perfect"]);
const NEGATIVE = new Set(["broken", "terrible", "awful", "bad", "hate", "refund"]);

const words = (text) => text.toLowerCase().match(/[a-z0-9]+/g) ?? [];

function fnv(s) {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

export function embed(text) {
  const v = new Array(DIM).fill(0);
  for (const w of words(text)) v[fnv(w) % DIM] += 1;
  const norm = Math.sqrt(v.reduce((n, x) => n + x * x, 0));
  if (norm === 0) {
    v[0] = 1;
    return v;
  }
  return v.map((x) => x / norm);
}

export function sentiment(text) {
  let score = 0;
  for (const w of words(text)) score += POSITIVE.has(w) ? 1 : NEGATIVE.has(w) ? -1 : 0;
  const p = score > 0 ? 0.97 : score < 0 ? 0.03 : 0.5;
  return [
    { label: "NEGATIVE", score: 1 - p },
    { label: "POSITIVE", score: p },
  ];
}

export default function () {
  return {
    async run(model, inputs) {
      if (model === EMBED_MODEL) {
        const texts = Array.isArray(inputs.text) ? inputs.text : [inputs.text];
        if (texts.length > 100) throw new Error("AiError: at most 100 texts");
        return { shape: [texts.length, DIM], data: texts.map(embed) };
      }
      if (model === SENTIMENT_MODEL) {
        if (typeof inputs.text !== "string") throw new Error("AiError: `text` must be a string");
        return sentiment(inputs.text);
      }
      throw new Error(`AiError: no such model ${model}`);
    },
  };
}
