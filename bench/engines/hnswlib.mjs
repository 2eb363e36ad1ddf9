// hnswlib-node (npm): in-memory HNSW, synchronous, single-threaded build and search.
import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
const { HierarchicalNSW } = require('hnswlib-node');

const SPACE = { cosine: 'cosine', euclidean: 'l2', ip: 'ip' };
function space(metric) {
  const s = SPACE[metric];
  if (!s) throw new Error(`hnswlib-node has no metric ${metric}`);
  return s;
}

export const version = () => require('hnswlib-node/package.json').version;
export const threadsNominal = () => 1; // addPoint is synchronous: one thread

export async function build(ctx) {
  const { vectors, n, dim } = ctx;
  const index = new HierarchicalNSW(space(ctx.metric), dim);
  index.initIndex(n, ctx.m, ctx.efConstruction, 100);
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    // hnswlib-node takes plain arrays only; the conversion is part of its cost to the user.
    index.addPoint(Array.from(vectors.subarray(i * dim, (i + 1) * dim)), i);
  }
  const insertSeconds = (performance.now() - t0) / 1000;
  const t1 = performance.now();
  await index.writeIndex(ctx.indexPath);
  return { insertSeconds, saveSeconds: (performance.now() - t1) / 1000 };
}

// Search takes number[]: convert once, outside the timed loop.
export function prepareQueries(flat, nq, dim) {
  return Array.from({ length: nq }, (_, i) => Array.from(flat.subarray(i * dim, (i + 1) * dim)));
}

export async function open(ctx) {
  const index = new HierarchicalNSW(space(ctx.metric), ctx.dim);
  await index.readIndex(ctx.indexPath);
  return index;
}

export function modes(index) {
  return [{
    name: 'single', kind: 'sync', label: 'hnswlib-node', threads: 1,
    description: 'searchKnn, synchronous, one query at a time',
    setEf: (ef) => index.setEf(ef),
    search: (q, k) => index.searchKnn(q, k).neighbors,
  }];
}
