// Ours: the hannoy Node.js addon (/work/main/index.js), LMDB-backed, async.
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
// HANNOY_BENCH_ADDON: another module with the same API (to test the harness without the addon)
const { Database } = require(process.env.HANNOY_BENCH_ADDON || path.join(ROOT, 'index.js'));

export const version = () => require(path.join(ROOT, 'package.json')).version;
export const threadsNominal = () => Number(process.env.RAYON_NUM_THREADS) || os.availableParallelism();

export async function build(ctx) {
  const db = await Database.open(ctx.indexPath);
  const w = db.writer(0, { dimensions: ctx.dim, metric: ctx.metric });
  const ids = new Uint32Array(ctx.n);
  for (let i = 0; i < ctx.n; i++) ids[i] = i;
  const t0 = performance.now();
  await w.addItems(ids, ctx.vectors);
  const addSeconds = (performance.now() - t0) / 1000;
  const t1 = performance.now();
  const res = await w.build({ m: ctx.m, efConstruction: ctx.efConstruction });
  const buildOnlySeconds = (performance.now() - t1) / 1000;
  await db.close();
  return { addSeconds, buildOnlySeconds, buildReport: res };
}

export async function open(ctx) {
  let db;
  try { db = await Database.open(ctx.indexPath, { readOnly: true }); }
  catch { db = await Database.open(ctx.indexPath); }
  const reader = await db.reader(0);
  return { db, reader };
}

export async function close(h) { await h.db.close(); }

export function modes(h, ctx) {
  const r = h.reader;
  const search = async (q, k, ef) => (await r.search(q, { k, ef })).map((x) => x.id);
  const inflight = ctx.inflight ?? 16;
  return [
    { name: 'single', kind: 'async', label: 'hannoy-node (1 awaited)', threads: 1,
      description: 'await reader.search(q), one query at a time', search },
    { name: `inflight${inflight}`, kind: 'inflight', concurrency: inflight, label: `hannoy-node (${inflight} in flight)`,
      threads: os.availableParallelism(), description: `${inflight} concurrent reader.search promises`, search },
    { name: 'batch', kind: 'batch', label: 'hannoy-node (searchBatch)', threads: os.availableParallelism(),
      description: 'reader.searchBatch(allQueries): one call',
      searchBatch: async (flat, nq, k, ef) => (await r.searchBatch(flat, { k, ef })).ids },
  ];
}
