// usearch (npm): in-memory HNSW from Unum. Build on all cores (threads = 0), save to one file.
// Its JS API has no setter for expansion_search, so each ef gets an Index constructed with
// expansion_search = ef that loads the saved file.
import os from 'node:os';
import fs from 'node:fs';
import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
const usearch = require('usearch');

const METRIC = { cosine: 'cos', euclidean: 'l2sq', ip: 'ip' };
function metricKind(m) {
  const s = METRIC[m];
  if (!s) throw new Error(`usearch: metric ${m} not mapped`);
  return s;
}
function make(ctx, expansionSearch) {
  return new usearch.Index({
    dimensions: ctx.dim, metric: metricKind(ctx.metric), quantization: 'f32',
    connectivity: ctx.m, expansion_add: ctx.efConstruction, expansion_search: expansionSearch, multi: false,
  });
}

export const version = () => JSON.parse(fs.readFileSync(require.resolve('usearch').replace(/javascript[/\\].*$/, 'package.json'), 'utf8')).version;
export const threadsNominal = () => os.availableParallelism();

export async function build(ctx) {
  const index = make(ctx, 64);
  const keys = new BigUint64Array(ctx.n);
  for (let i = 0; i < ctx.n; i++) keys[i] = BigInt(i);
  const t0 = performance.now();
  index.add(keys, ctx.vectors, 0);
  const insertSeconds = (performance.now() - t0) / 1000;
  const t1 = performance.now();
  index.save(ctx.indexPath);
  return { insertSeconds, saveSeconds: (performance.now() - t1) / 1000 };
}

export async function open(ctx) {
  const h = { ctx, ef: 64, index: make(ctx, 64), loadMs: [] };
  h.index[ctx.usearchView ? 'view' : 'load'](ctx.indexPath);
  return h;
}

function setEf(h, ef) {
  if (h.ef === ef) return;
  const idx = make(h.ctx, ef);
  idx[h.ctx.usearchView ? 'view' : 'load'](h.ctx.indexPath);
  h.index = idx; h.ef = ef;
  if (global.gc) global.gc();
}

export function modes(h) {
  return [
    {
      name: 'single', kind: 'sync', label: 'usearch', threads: 1,
      description: 'index.search(query, k, 1): synchronous, one query at a time, one thread',
      setEf: (ef) => setEf(h, ef),
      search: (q, k) => h.index.search(q, k, 1).keys,
    },
    {
      name: 'batch', kind: 'batch', label: 'usearch (batch)', threads: os.availableParallelism(),
      description: 'index.search(allQueries, k, 0): one call, all cores',
      setEf: (ef) => setEf(h, ef),
      searchBatch: (flat, nq, k) => h.index.search(flat, k, 0).keys,
    },
  ];
}
