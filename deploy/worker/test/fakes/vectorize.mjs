// An in-memory Cloudflare Vectorize index for Miniflare's `wrappedBindings` (Vectorize cannot
// run locally): the binding API (`upsert`, `query`, `getByIds`, `deleteByIds`, `describe`) with
// its semantics as far as crow-worker relies on them: ids global to the index, namespaces as an
// exact pre-filter, cosine scores best first, metadata filters (`$eq`, `$ne`, `$in`, `$nin`,
// `$lt`, `$lte`, `$gt`, `$gte`, bare values), and the topK limits (100; 20 with values or all
// metadata). The wrapped binding's own bindings: `NAME` (one store per name) and optionally
// `SEED` (vectors upserted when the store is first used).
const stores = new Map();

function cosine(a, b) {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return na && nb ? dot / Math.sqrt(na * nb) : 0;
}

function condition(value, spec) {
  if (spec === null || typeof spec !== "object") return value === spec;
  return Object.entries(spec).every(([op, v]) => {
    switch (op) {
      case "$eq":
        return value === v;
      case "$ne":
        return value !== v;
      case "$in":
        return v.includes(value);
      case "$nin":
        return !v.includes(value);
      case "$lt":
        return value !== undefined && value < v;
      case "$lte":
        return value !== undefined && value <= v;
      case "$gt":
        return value !== undefined && value > v;
      case "$gte":
        return value !== undefined && value >= v;
      default:
        throw new Error(`VECTOR_QUERY_ERROR: unsupported filter operator ${op}`);
    }
  });
}

export function matchesFilter(metadata, filter) {
  return Object.entries(filter ?? {}).every(([field, spec]) => condition(metadata?.[field], spec));
}

function copy(v) {
  return { id: v.id, namespace: v.namespace, values: [...v.values], metadata: structuredClone(v.metadata ?? {}) };
}

export default function (env) {
  const name = env.NAME ?? "default";
  if (!stores.has(name)) {
    const store = new Map();
    for (const v of env.SEED ?? []) store.set(v.id, copy(v));
    stores.set(name, store);
  }
  const store = stores.get(name);
  return {
    async describe() {
      return { dimensions: 384, vectorCount: store.size, config: { dimensions: 384, metric: "cosine" } };
    },
    async upsert(vectors) {
      if (vectors.length > 1000) throw new Error("VECTOR_UPSERT_ERROR: more than 1000 vectors in a batch");
      for (const v of vectors) {
        if (typeof v.id !== "string" || new TextEncoder().encode(v.id).length > 64) throw new Error(`VECTOR_UPSERT_ERROR: bad id ${v.id}`);
        if (v.values.length !== 384) throw new Error(`VECTOR_UPSERT_ERROR: ${v.values.length} dimensions`);
        store.set(v.id, copy(v));
      }
      return { mutationId: `m-${Date.now()}` };
    },
    async query(vector, options = {}) {
      const topK = options.topK ?? 5;
      const all = options.returnMetadata === "all" || options.returnValues === true;
      if (topK > (all ? 20 : 100)) throw new Error(`VECTOR_QUERY_ERROR: topK ${topK} is over the limit`);
      const hits = [...store.values()]
        .filter((v) => options.namespace === undefined || v.namespace === options.namespace)
        .filter((v) => matchesFilter(v.metadata, options.filter))
        .map((v) => ({ v, score: cosine(vector, v.values) }))
        .sort((a, b) => b.score - a.score)
        .slice(0, topK);
      return {
        count: hits.length,
        matches: hits.map(({ v, score }) => {
          const m = { id: v.id, score, namespace: v.namespace };
          if (options.returnMetadata === "all") m.metadata = structuredClone(v.metadata);
          if (options.returnValues) m.values = [...v.values];
          return m;
        }),
      };
    },
    async getByIds(ids) {
      if (ids.length > 20) throw new Error("VECTOR_GET_ERROR: more than 20 ids");
      return ids.filter((id) => store.has(id)).map((id) => copy(store.get(id)));
    },
    async deleteByIds(ids) {
      for (const id of ids) store.delete(id);
      return { mutationId: `m-${Date.now()}` };
    },
  };
}
