// One engine, one phase, in its own process, so that the memory and thread figures are its own.
//   node bench/engines/driver.mjs --config <file.json>
// The config names the engine module (bench/engines/<engine>.mjs), the phase ('build' or
// 'search'), the data files and the parameters; the result is written as JSON to cfg.resultFile.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  childConfig, writeResult, readMatrix, readHeader, recallAt, latencySummary, memFigures, cpuSeconds, now,
  dirBytes, dirAllocatedBytes, dirApparentBytes, round, log,
} from '../lib/common.mjs';

const tProcess = now() - process.uptime() * 1000; // process start, on the same clock
const here = path.dirname(fileURLToPath(import.meta.url));
const cfg = childConfig();

async function main() {
  const tImport0 = now();
  const engine = await import(path.join(here, `${cfg.engine}.mjs`));
  const importMs = now() - tImport0;
  if (cfg.phase === 'build') return buildPhase(engine);
  if (cfg.phase === 'search') return searchPhase(engine, importMs);
  if (cfg.phase === 'scale-search') return scaleSearchPhase(engine, importMs);
  throw new Error(`unknown phase ${cfg.phase}`);
}

async function buildPhase(engine) {
  // cfg.streamRows (the scale run): the engine reads the base file in parts itself, so that
  // this process never holds every vector
  const base = cfg.streamRows ? { rows: cfg.n ?? readHeader(cfg.baseFile).rows, cols: readHeader(cfg.baseFile).cols, data: null } : readMatrix(cfg.baseFile, { count: cfg.n });
  const memBefore = memFigures();
  const ctx = { ...cfg, vectors: base.data, n: base.rows, dim: base.cols };
  const c0 = cpuSeconds(), t0 = now();
  const extra = (await engine.build(ctx)) || {};
  const wallS = (now() - t0) / 1000, cpuS = cpuSeconds() - c0;
  const memAfter = memFigures();
  const diskBytes = dirBytes(cfg.indexPath);
  writeResult(cfg, {
    engine: cfg.engine, version: engine.version?.() ?? null,
    n: base.rows, dim: base.cols,
    buildSeconds: round(wallS, 3), buildCpuSeconds: round(cpuS, 3),
    cpuParallelism: round(cpuS / wallS, 2),
    threadsNominal: engine.threadsNominal ? engine.threadsNominal(ctx) : null,
    diskBytes, diskApparentBytes: dirApparentBytes(cfg.indexPath), diskAllocatedBytes: dirAllocatedBytes(cfg.indexPath),
    diskBytesPerVector: round(diskBytes / base.rows, 2),
    rawVectorBytesPerVector: base.cols * 4,
    memoryBeforeBuild: memBefore, memoryAfterBuild: memAfter,
    ...extra,
  });
}

async function searchPhase(engine, importMs) {
  const q = readMatrix(cfg.queriesFile, { count: cfg.nq ?? undefined });
  const nq = q.rows, dim = q.cols, k = cfg.k;
  let gt = null;
  if (cfg.gtFile) gt = readMatrix(cfg.gtFile, { kind: 'u32', count: nq });
  const queries = engine.prepareQueries ? engine.prepareQueries(q.data, nq, dim) : Array.from({ length: nq }, (_, i) => q.data.subarray(i * dim, (i + 1) * dim));
  const ctx = { ...cfg, dim };

  // Time to open the index and answer the first query, in this fresh process. A mode's knob is
  // ef unless it says otherwise (mode.knob, e.g. 'nprobes', swept over mode.knobValues).
  const t0 = now();
  const handle = await engine.open(ctx);
  const openMs = now() - t0;
  const modes = engine.modes(handle, ctx);
  const m0 = modes[0];
  const firstKnob = m0.knob || 'ef';
  const firstEf = m0.knobValues ? (m0.firstKnobValue ?? m0.knobValues[0]) : cfg.efs.includes(80) ? 80 : cfg.efs[0];
  if (m0.setEf) await m0.setEf(firstEf);
  if (m0.kind === 'batch') await m0.searchBatch(q.data.subarray(0, dim), 1, k, firstEf);
  else await m0.search(queries[0], k, firstEf);
  const tFirst = now();
  const firstQueryMs = tFirst - t0;
  const memAfterOpen = memFigures();

  const results = [];
  let peakAnon = memAfterOpen.rssAnon;
  for (const mode of modes) {
    const points = [];
    const knob = mode.knob || 'ef';
    for (const ef of mode.knobValues || cfg.efs) {
      if (cfg.deadline && Date.now() > cfg.deadline) { log(`${cfg.engine}/${mode.name}: out of time, skipping ${knob} ${ef}`); break; }
      if (mode.setEf) await mode.setEf(ef);
      const p = await sweepPoint(mode, knob, ef, queries, q.data, nq, dim, k, gt);
      points.push(p);
      const mf = memFigures();
      if (mf.rssAnon > peakAnon) peakAnon = mf.rssAnon;
      log(`${cfg.engine}/${mode.name} ${knob}=${ef}: recall@${k}=${p.recall ?? '-'} qps=${p.qps} p50=${p.p50Ms ?? '-'}ms p99=${p.p99Ms ?? '-'}ms cpu=${p.cpuParallelism}x`);
    }
    results.push({ mode: mode.name, label: mode.label || `${cfg.engine}${mode.name === 'single' ? '' : ' (' + mode.name + ')'}`, description: mode.description || null, threads: mode.threads ?? 1, ...(knob !== 'ef' ? { knob } : {}), points });
  }
  if (engine.close) await engine.close(handle);
  writeResult(cfg, {
    engine: cfg.engine, version: engine.version?.() ?? null, nq, k,
    importMs: round(importMs, 2), openMs: round(openMs, 3), openFirstQueryMs: round(firstQueryMs, 3),
    ...(firstKnob === 'ef' ? { firstQueryEf: firstEf } : { firstQueryKnob: { [firstKnob]: firstEf } }),
    readThreads: Number(process.env.HANNOY_READ_THREADS) || null, rayonThreads: Number(process.env.RAYON_NUM_THREADS) || null,
    ...(engine.searchInfo ? engine.searchInfo(handle) : {}),
    processStartToFirstQueryMs: round(tFirst - tProcess, 2),
    memoryAfterOpen: memAfterOpen, memoryAtEnd: memFigures(), peakRssAnonSampled: peakAnon,
    modes: results,
  });
}

// One point of the sweep at knob value `ef` (the knob is ef unless the mode names another: the
// point then records it under that name, e.g. { nprobes: 20 }).
async function sweepPoint(mode, knob, ef, queries, flat, nq, dim, k, gt) {
  const minMs = (cfg.minTimeSeconds ?? 1) * 1000;
  // Pass 1 (warm-up) gives the recall; then timed passes until minTime has elapsed.
  let found;
  if (mode.kind === 'batch') {
    const ids = await mode.searchBatch(flat, nq, k, ef);
    found = ids;
  } else {
    found = new Array(nq);
    if (mode.kind === 'inflight') await inflight(mode, queries, k, ef, mode.concurrency, (i, r) => { found[i] = r; });
    else for (let i = 0; i < nq; i++) found[i] = await mode.search(queries[i], k, ef);
  }
  const recall = gt ? round(recallAt(found, gt.data, gt.cols, k, nq), 4) : null;

  // Timed passes over all queries until minTime has elapsed (and at least minPasses passes).
  // QPS is the best pass (as ann-benchmarks reports: the least disturbed by other processes on
  // a shared machine); qpsMean is over all timed passes.
  const lat = [];
  let done = 0, calls = 0, passes = 0, bestPassMs = Infinity;
  const minPasses = cfg.minPasses ?? 2;
  const tStart = now(), cpu0 = cpuSeconds();
  while (true) {
    const tp = now();
    if (mode.kind === 'batch') {
      await mode.searchBatch(flat, nq, k, ef);
      lat.push(now() - tp); calls++;
    } else if (mode.kind === 'inflight') {
      await inflight(mode, queries, k, ef, mode.concurrency, null, lat);
    } else if (mode.kind === 'async') {
      for (let i = 0; i < nq; i++) { const t = now(); await mode.search(queries[i], k, ef); lat.push(now() - t); }
    } else { // sync
      for (let i = 0; i < nq; i++) { const t = now(); mode.search(queries[i], k, ef); lat.push(now() - t); }
    }
    bestPassMs = Math.min(bestPassMs, now() - tp);
    done += nq; passes++;
    if (now() - tStart >= minMs && passes >= minPasses) break;
    if (cfg.deadline && Date.now() > cfg.deadline) break;
  }
  const elapsed = now() - tStart;
  // cpuParallelism: process CPU seconds / wall seconds over the timed passes (how many cores the
  // mode kept busy, whatever its threads were told)
  const point = { [knob]: ef, recall, qps: round(nq / (bestPassMs / 1000), 1), qpsMean: round(done / (elapsed / 1000), 1), passes, queries: done, seconds: round(elapsed / 1000, 3), cpuParallelism: round((cpuSeconds() - cpu0) / (elapsed / 1000), 2) };
  if (mode.kind === 'batch') {
    const s = latencySummary(lat);
    Object.assign(point, { p50Ms: null, p99Ms: null, batchCallMs: s.p50Ms, batchCalls: calls });
  } else Object.assign(point, latencySummary(lat));
  return point;
}

// The scale run's search: one mode (cfg.mode) at one ef, in passes over the queries in order,
// the whole bounded by cfg.timeBoxSeconds and the first pass by half of it (so that a slow
// index still gets a later pass); after the first pass, later passes run until
// cfg.laterSeconds have passed (at least one). A pass cut by the time box counts the queries
// it answered. Reports the first pass (cold when the caller dropped the page
// cache), the best later pass, and recall@k over the queries the first pass answered.
async function scaleSearchPhase(engine, importMs) {
  const q = readMatrix(cfg.queriesFile, { count: cfg.nq ?? undefined });
  const nq = q.rows, dim = q.cols, k = cfg.k, ef = cfg.ef;
  const gt = cfg.gtFile ? readMatrix(cfg.gtFile, { kind: 'u32', count: nq }) : null;
  const queries = Array.from({ length: nq }, (_, i) => q.data.subarray(i * dim, (i + 1) * dim));
  const ctx = { ...cfg, dim };
  const t0 = now();
  const handle = await engine.open(ctx);
  const openMs = now() - t0;
  const mode = engine.modes(handle, ctx).find((m) => m.name === cfg.mode);
  if (!mode) throw new Error(`${cfg.engine}: no mode ${cfg.mode}`);
  const boxMs = cfg.timeBoxSeconds * 1000, tStart = now();
  const passes = [];
  let firstFound = null;
  const memSamples = [];
  while (true) {
    const found = passes.length === 0 ? new Array(nq) : null;
    const left = boxMs - (now() - tStart);
    if (left <= 0) break;
    const p = await timedPass(mode, queries, k, ef, now() + (passes.length === 0 ? Math.min(left, boxMs / 2) : left), found);
    passes.push(p);
    memSamples.push(memFigures());
    if (found) firstFound = { found, answered: p.queries };
    log(`${cfg.engine}/${mode.name} ef=${ef} pass ${passes.length}: ${p.queries} queries in ${p.seconds} s = ${p.qps} QPS${p.complete ? '' : ' (cut by the time box)'}`);
    const laterS = passes.length > 1 ? passes.slice(1).reduce((a, b) => a + b.seconds, 0) : 0;
    if (passes.length > 1 && (laterS >= cfg.laterSeconds || !p.complete)) break;
  }
  let recall = null;
  if (gt && firstFound && firstFound.answered > 0) {
    // the answered queries of a cut pass are not a prefix in flight: take those present
    const idx = [], rows = [];
    for (let i = 0; i < nq; i++) if (firstFound.found[i]) { idx.push(i); rows.push(firstFound.found[i]); }
    const sub = new Uint32Array(idx.length * gt.cols);
    idx.forEach((qi, j) => sub.set(gt.data.subarray(qi * gt.cols, (qi + 1) * gt.cols), j * gt.cols));
    recall = round(recallAt(rows, sub, gt.cols, k, idx.length), 4);
  }
  const later = passes.slice(1);
  const bestLater = later.length ? later.reduce((a, b) => (b.qps > a.qps ? b : a)) : null;
  if (engine.close) await engine.close(handle);
  writeResult(cfg, {
    engine: cfg.engine, version: engine.version?.() ?? null, mode: mode.name, label: mode.label, ef, k, nq,
    readThreads: Number(process.env.HANNOY_READ_THREADS) || null,
    importMs: round(importMs, 2), openMs: round(openMs, 3),
    recall, recallQueries: firstFound ? firstFound.answered : 0,
    firstPass: passes[0] ?? null, bestLaterPass: bestLater, passes,
    seconds: round((now() - tStart) / 1000, 3), memoryAtEnd: memFigures(),
    peakRssAnonSampled: Math.max(0, ...memSamples.map((m) => m.rssAnon || 0)),
  });
}

// One pass over the queries in order until all are answered or `deadline` (ms, now() clock).
async function timedPass(mode, queries, k, ef, deadline, found) {
  const nq = queries.length, lat = [];
  let answered = 0;
  const t0 = now();
  if (mode.kind === 'inflight') {
    let next = 0;
    const worker = async () => {
      while (now() < deadline) {
        const i = next++;
        if (i >= nq) return;
        const t = now();
        const r = await mode.search(queries[i], k, ef);
        lat.push(now() - t); answered++;
        if (found) found[i] = r;
      }
    };
    await Promise.all(Array.from({ length: mode.concurrency }, worker));
  } else {
    for (let i = 0; i < nq && now() < deadline; i++) {
      const t = now();
      const r = mode.kind === 'sync' ? mode.search(queries[i], k, ef) : await mode.search(queries[i], k, ef);
      lat.push(now() - t); answered++;
      if (found) found[i] = r;
    }
  }
  const ms = now() - t0;
  return { queries: answered, complete: answered === nq, seconds: round(ms / 1000, 3), qps: round(answered / (ms / 1000), 1), ...latencySummary(lat) };
}

// A pool of `concurrency` promises: each takes the next query as soon as its previous one resolves.
async function inflight(mode, queries, k, ef, concurrency, onResult, lat) {
  let next = 0;
  const worker = async () => {
    while (true) {
      const i = next++;
      if (i >= queries.length) return;
      const t = now();
      const r = await mode.search(queries[i], k, ef);
      if (lat) lat.push(now() - t);
      if (onResult) onResult(i, r);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

main().catch((e) => {
  log(`${cfg.engine} ${cfg.phase} failed: ${e && e.stack || e}`);
  try { writeResult(cfg, { engine: cfg.engine, phase: cfg.phase, error: String(e && e.message || e), code: e && e.code || null }); } catch {}
  process.exit(1);
});
