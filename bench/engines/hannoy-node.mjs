// Ours: the hannoy Node.js addon (/work/main/index.js), LMDB-backed, async.
// This module is the engine `hannoy-node` (quantization 'none'); hannoy-node-int8.mjs and
// hannoy-node-binary.mjs are the same engine over a quantized index (`engineFor(q)`).
import os from 'node:os';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
// HANNOY_BENCH_ADDON: another module with the same API (to test the harness without the addon)
const { Database } = require(process.env.HANNOY_BENCH_ADDON || path.join(ROOT, 'index.js'));

// Bytes the graph walk reads per visited node, from the formula (an estimate, nothing is
// measured in the index): 'none' reads the stored vector (4 + 4·d bytes) and the level-0 link
// list; a quantized index reads its level-0 record, the code (int8: d bytes; binary: 12 +
// ceil(d/64)·8 bytes) beside the links. A link list is a roaring bitmap of up to m0 = 2·M ids,
// about 9 + 2·m0 bytes (an upper bound for one container: lists spanning several 65,536-id
// containers take a few bytes more).
export function walkBytesEstimate(quantization, dim, m) {
  const m0 = 2 * m, links = 9 + 2 * m0;
  const code = quantization === 'int8' ? dim : quantization === 'binary' ? 12 + Math.ceil(dim / 64) * 8 : 4 + 4 * dim;
  const formula = quantization === 'int8' ? `d + (9 + 2·m0) = ${dim} + ${links}`
    : quantization === 'binary' ? `12 + ceil(d/64)·8 + (9 + 2·m0) = ${code} + ${links}`
      : `4 + 4·d + (9 + 2·m0) = ${code} + ${links}`;
  return { bytes: code + links, codeBytes: code, linkBytes: links, m0, formula };
}

export function engineFor(quantization) {
  const name = quantization === 'none' ? 'hannoy-node' : `hannoy-node-${quantization}`;
  const version = () => require(path.join(ROOT, 'package.json')).version;
  const threadsNominal = () => Number(process.env.RAYON_NUM_THREADS) || os.availableParallelism();

  // ctx.vectors: all vectors in memory (the default). Without them (ctx.streamRows set, the
  // scale run), the vectors are read from ctx.baseFile and added ctx.streamRows at a time, so
  // the process never holds the whole set (it runs inside a memory limit).
  async function build(ctx) {
    const db = await Database.open(ctx.indexPath);
    const w = db.writer(0, { dimensions: ctx.dim, metric: ctx.metric, quantization });
    const t0 = performance.now();
    if (ctx.vectors) {
      const ids = new Uint32Array(ctx.n);
      for (let i = 0; i < ctx.n; i++) ids[i] = i;
      await w.addItems(ids, ctx.vectors);
    } else {
      // one buffer for every part (addItems reads it in place until its Promise resolves), so
      // the process holds one part, not the garbage of the earlier ones
      const step = ctx.streamRows || 20000;
      const buf = new Float32Array(step * ctx.dim), ids = new Uint32Array(step);
      const bytes = new Uint8Array(buf.buffer);
      const fd = fs.openSync(ctx.baseFile, 'r');
      try {
        for (let s = 0; s < ctx.n; s += step) {
          const c = Math.min(step, ctx.n - s), len = c * ctx.dim * 4;
          for (let off = 0; off < len;) {
            const r = fs.readSync(fd, bytes, off, len - off, 8 + s * ctx.dim * 4 + off);
            if (r <= 0) throw new Error(`${ctx.baseFile}: unexpected end of file`);
            off += r;
          }
          for (let i = 0; i < c; i++) ids[i] = s + i;
          await w.addItems(c === step ? ids : ids.subarray(0, c), c === step ? buf : buf.subarray(0, c * ctx.dim));
          progress(ctx, { phase: 'add', done: s + c, total: ctx.n, seconds: round3((performance.now() - t0) / 1000) });
        }
      } finally { fs.closeSync(fd); }
    }
    const addSeconds = (performance.now() - t0) / 1000;
    const t1 = performance.now();
    const phases = {};
    let last = 0, lastPhase = null;
    const onProgress = (p) => {
      const t = (performance.now() - t1) / 1000;
      phases[p.phase] = round3(t);
      if (ctx.progressFile && (t - last > 2 || p.done === p.total || p.phase !== lastPhase)) { last = t; lastPhase = p.phase; progress(ctx, { ...p, seconds: round3(addSeconds + t) }); }
    };
    const res = await w.build({ m: ctx.m, efConstruction: ctx.efConstruction, onProgress });
    const buildOnlySeconds = (performance.now() - t1) / 1000;
    const desc = (await db.indexes()).find((x) => x.index === 0);
    await db.close();
    if (desc && desc.quantization !== undefined && desc.quantization !== quantization) throw new Error(`asked for quantization ${quantization}, the index says ${desc.quantization}`);
    return {
      addSeconds, buildOnlySeconds, buildReport: res, phaseEndSeconds: phases, quantization: desc?.quantization ?? quantization,
      walkBytesPerNode: { ...walkBytesEstimate(quantization, ctx.dim, ctx.m), estimate: true },
    };
  }

  async function open(ctx) {
    let db;
    try { db = await Database.open(ctx.indexPath, { readOnly: true }); }
    catch { db = await Database.open(ctx.indexPath); }
    const reader = await db.reader(0);
    if (reader.quantization !== undefined && reader.quantization !== quantization) throw new Error(`${name}: the index has quantization ${reader.quantization}, expected ${quantization}`);
    return { db, reader };
  }

  async function close(h) { await h.db.close(); }

  function modes(h, ctx) {
    const r = h.reader;
    // oversampling / rescore only when asked for (--oversampling, --no-rescore): otherwise the
    // addon's defaults
    const extra = {};
    if (quantization !== 'none' && ctx.oversampling) extra.oversampling = ctx.oversampling;
    if (quantization !== 'none' && ctx.rescore === false) extra.rescore = false;
    const search = async (q, k, ef) => (await r.search(q, { k, ef, ...extra })).map((x) => x.id);
    const searchBatch = async (flat, nq, k, ef) => (await r.searchBatch(flat, { k, ef, ...extra })).ids;
    if (ctx.perCore) {
      // The per-core figure, in a search process of its own that run.mjs starts with
      // HANNOY_READ_THREADS=1 (the read pool) and RAYON_NUM_THREADS=1 (the pool searchBatch
      // spreads its queries over): the engine on one core, without a per-call cost.
      for (const v of ['HANNOY_READ_THREADS', 'RAYON_NUM_THREADS']) if (process.env[v] !== '1') throw new Error(`${name}: the per-core process needs ${v}=1 (it is ${process.env[v] ?? 'unset'})`);
      return [{ name: 'batch1', kind: 'batch', label: `${name} (searchBatch, 1 thread)`, threads: 1,
        description: 'reader.searchBatch(allQueries): one call, HANNOY_READ_THREADS=1 and RAYON_NUM_THREADS=1', searchBatch }];
    }
    const inflight = ctx.inflight ?? 16;
    return [
      { name: 'single', kind: 'async', label: `${name} (1 awaited)`, threads: 1,
        description: 'await reader.search(q), one query at a time', search },
      { name: `inflight${inflight}`, kind: 'inflight', concurrency: inflight, label: `${name} (${inflight} in flight)`,
        threads: readThreads(), description: `${inflight} concurrent reader.search promises`, search },
      { name: 'batch', kind: 'batch', label: `${name} (searchBatch)`, threads: os.availableParallelism(),
        description: 'reader.searchBatch(allQueries): one call', searchBatch },
    ];
  }

  return { name, quantization, version, threadsNominal, build, open, close, modes };
}

const readThreads = () => Number(process.env.HANNOY_READ_THREADS) || os.availableParallelism();
const round3 = (x) => Math.round(x * 1000) / 1000;

function progress(ctx, p) {
  if (!ctx.progressFile) return;
  try { fs.writeFileSync(ctx.progressFile, JSON.stringify({ ...p, at: new Date().toISOString() })); } catch {}
}

export const { version, threadsNominal, build, open, close, modes } = engineFor('none');
