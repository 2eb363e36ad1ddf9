// One cold-start case of `npm run bench -- --cold-start` (bench/lib/coldstart.mjs), in a fresh
// process:   node bench/engines/coldstart-child.mjs --config <file.json>
// Loads the addon and the queries first (not timed), then times Database.open(readOnly) +
// db.reader(0[, { prefetch }]) [+ reader.warm({ bytes })] + the first search, and runs passes
// over the queries in order, one awaited search at a time (k, ef). cfg.variant: 'none' (no
// prefetch), 'prefetch' (db.reader(0, { prefetch: cfg.bytes })) or 'warm' (await
// reader.warm({ bytes: cfg.bytes }) before the first query; its time is reported apart).
// Writes the timings, recall, and the process's faults and read bytes at each stage to
// cfg.resultFile.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { childConfig, writeResult, readMatrix, recallAt, latencySummary, memFigures, round, log } from '../lib/common.mjs';

const require = createRequire(import.meta.url);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const cfg = childConfig();
const now = () => performance.now();

// minor / major faults (/proc/self/stat fields 10 and 12) and bytes this process made the
// kernel fetch from storage (/proc/self/io read_bytes; page faults and the addon's threads
// count too)
function counters() {
  const out = { minorFaults: null, majorFaults: null, readBytes: null };
  try {
    const s = fs.readFileSync('/proc/self/stat', 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    out.minorFaults = Number(f[7]); out.majorFaults = Number(f[9]);
  } catch {}
  try { const m = /^read_bytes:\s+(\d+)/m.exec(fs.readFileSync('/proc/self/io', 'utf8')); if (m) out.readBytes = Number(m[1]); } catch {}
  return out;
}
const delta = (a, b) => ({ minorFaults: b.minorFaults - a.minorFaults, majorFaults: b.majorFaults - a.majorFaults, readBytes: b.readBytes === null ? null : b.readBytes - a.readBytes });

async function main() {
  const tImport = now();
  const { Database } = require(process.env.HANNOY_BENCH_ADDON || path.join(ROOT, 'index.js'));
  const importMs = now() - tImport;
  const q = readMatrix(cfg.queriesFile, { count: cfg.nq ?? undefined });
  const nq = q.rows, dim = q.cols, k = cfg.k, ef = cfg.ef;
  const gt = cfg.gtFile ? readMatrix(cfg.gtFile, { kind: 'u32', count: nq }) : null;
  const queries = Array.from({ length: nq }, (_, i) => q.data.subarray(i * dim, (i + 1) * dim));
  const envPrefetch = process.env.HANNOY_READER_PREFETCH_MEMORY ?? null;
  if (envPrefetch !== null) log(`warning: HANNOY_READER_PREFETCH_MEMORY=${envPrefetch} is set in this process`);

  const c0 = counters();
  const t0 = now();
  const db = await Database.open(cfg.indexPath, { readOnly: true });
  const tOpen = now();
  const reader = cfg.variant === 'prefetch' ? await db.reader(0, { prefetch: cfg.bytes }) : await db.reader(0);
  const tReader = now();
  const cOpen = counters();
  let warm = null, tWarm = tReader;
  if (cfg.variant === 'warm') {
    const w = await reader.warm({ bytes: cfg.bytes });
    tWarm = now();
    warm = { ms: round(tWarm - tReader, 3), bytes: w.bytes, nodes: w.nodes, seconds: w.seconds };
  }
  const cWarm = counters();

  const boxMs = (cfg.passTimeBoxSeconds ?? 120) * 1000;
  const passes = [];
  let firstQueryMs = null, cFirst = null, cFirst100 = null, recall = null, recallQueries = 0;
  const firstN = cfg.firstN ?? 100;
  for (let p = 0; p < (cfg.passes ?? 2); p++) {
    const lat = new Float64Array(nq);
    const found = p === 0 ? new Array(nq) : null;
    const tp = now();
    let done = 0, cut = false;
    for (let i = 0; i < nq; i++) {
      const a = now();
      const r = await reader.search(queries[i], { k, ef });
      const b = now();
      lat[i] = b - a;
      if (found) found[i] = r.map((x) => x.id);
      done++;
      if (p === 0 && i === 0) { firstQueryMs = b - a; cFirst = counters(); }
      if (p === 0 && i === firstN - 1) cFirst100 = counters();
      if (b - tp > boxMs && i < nq - 1) { cut = true; break; }
    }
    const seconds = (now() - tp) / 1000;
    const l = Array.from(lat.subarray(0, done));
    const pass = { queries: done, complete: !cut, seconds: round(seconds, 4), qps: round(done / seconds, 2), ...latencySummary(l) };
    if (p === 0) {
      pass.firstN = Math.min(firstN, done);
      Object.assign(pass, Object.fromEntries(Object.entries(latencySummary(l.slice(0, firstN))).map(([key, v]) => [key.replace(/Ms$/, 'FirstNMs'), v])));
      if (gt) { recall = round(recallAt(found.slice(0, done), gt.data, gt.cols, k, done), 4); recallQueries = done; }
    }
    pass.counters = counters();
    passes.push(pass);
    log(`${cfg.engine} ${cfg.cache}/${cfg.variant}: pass ${p + 1}: ${done} queries in ${round(seconds, 3)} s = ${round(done / seconds, 1)} QPS, p50 ${pass.p50Ms} ms${p === 0 ? `, first ${pass.firstN}: p50 ${pass.p50FirstNMs} / p99 ${pass.p99FirstNMs} ms` : ''}${cut ? ' (cut by the box)' : ''}`);
    if (cut) break;
  }
  const cEnd = counters();
  await db.close();
  writeResult(cfg, {
    engine: cfg.engine, cache: cfg.cache, variant: cfg.variant, bytes: cfg.bytes ?? null, k, ef, nq,
    importMs: round(importMs, 2),
    openMs: round(tOpen - t0, 3), readerMs: round(tReader - tOpen, 3), warm, firstQueryMs: round(firstQueryMs, 3),
    openFirstQueryMs: round(tReader - t0 + firstQueryMs, 3), // Database.open + db.reader + first search (warm() apart)
    readyMs: round(tWarm - t0 + firstQueryMs, 3), // the same, warm() included
    recall, recallQueries, passes,
    stages: { open: delta(c0, cOpen), warm: delta(cOpen, cWarm), firstQuery: cFirst ? delta(cWarm, cFirst) : null, first100: cFirst100 ? delta(cWarm, cFirst100) : null, all: delta(c0, cEnd) },
    memoryAtEnd: memFigures(), envPrefetch,
  });
}

main().catch((e) => {
  log(String(e && e.stack || e));
  try { writeResult(cfg, { error: String(e && e.message || e) }); } catch {}
  process.exit(1);
});
