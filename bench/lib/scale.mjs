// The larger-than-RAM run (`npm run bench -- --scale`): a synth384 set of --scale-n vectors,
// ours with quantization none, binary and int8, each
//   - built once without a limit, and again inside a memory cgroup of --scale-build-limit after
//     dropping the page cache (the ratio of the two build times);
//   - searched (one awaited query at a time, and --inflight in flight, at --scale-ef) outside any
//     limit with a warm page cache, and inside a memory cgroup of --scale-limit after dropping
//     the page cache, each in a fresh process, with the default read threads and with
//     HANNOY_READ_THREADS=--scale-read-threads;
// and writes bench/results/scale-<n>.{json,md}. Every search process is time-boxed
// (--scale-time-box): it reports what it did in that time.
import fs from 'node:fs';
import path from 'node:path';
import { detectCgroups, createCgroup, cgroupStats, watchCgroup, removeCgroup, dropCaches } from './cgroup.mjs';

export async function scaleRun(h) {
  const { o, py, env, engines, say, die, runChild, fmtInt, fmtMiB, kName, round, fileKey, sameKey, machineInfo, idleBaselines, prepareSynth, ensureGroundTruth, readHeader, DATA, RESULTS, ROOT, BENCH, MiB } = h;
  const t0 = Date.now();
  const n = o.scaleN, name = `synth384-${kName(n)}`, metric = o.metric;
  const { baseFile, queriesFile, source } = prepareSynth(o, py, n, name);
  const qh = readHeader(queriesFile), bh = readHeader(baseFile);
  const gtFile = ensureGroundTruth(py, { name, baseFile, n, queriesFile, metric, k: o.k });
  const nq = qh.rows, dim = bh.cols;
  const limitBytes = Math.round(o.scaleLimitMiB * MiB), buildLimitBytes = Math.round(o.scaleBuildLimitMiB * MiB);
  const inflightMode = `inflight${o.inflight}`;
  const modes = ['single', inflightMode];
  const logFile = (e) => path.join(DATA, 'logs', `${name}-scale-${e}.log`);
  fs.mkdirSync(path.join(DATA, 'logs'), { recursive: true });
  const indexDir = path.join(DATA, 'indexes', `${name}-scale`);
  fs.mkdirSync(indexDir, { recursive: true });
  const driver = { cmd: process.execPath, args: ['--expose-gc', path.join(BENCH, 'engines', 'driver.mjs')] };

  // cgroups and dropping the page cache: both or neither
  let cg = o.scaleNoLimits ? { kind: null, reason: '--scale-no-limits' } : detectCgroups(o.cgroupParent);
  if (cg.kind) {
    const why = dropCaches();
    if (why) cg = { kind: null, reason: why };
  }
  if (!cg.kind) say(`bench: --scale: ${cg.reason}: skipping the in-limit builds and searches (the unlimited figures still run)`);
  else say(`bench: --scale: memory cgroups ${cg.kind} under ${cg.parent}; search limit ${fmtMiB(limitBytes)} MiB, build limit ${fmtMiB(buildLimitBytes)} MiB`);
  const created = new Set();
  let cgSeq = 0;
  const cleanup = () => { for (const c of created) { removeCgroup(c); created.delete(c); } };
  process.on('exit', cleanup);
  const newCgroup = (tag, bytes) => {
    const c = createCgroup(cg, `hannoy-bench-${process.pid}-${++cgSeq}-${tag}`, bytes);
    created.add(c);
    return c;
  };
  const dropCgroup = (c, w) => {
    const sampled = w ? w.stop() : null;
    const st = { ...cgroupStats(c), sampledPeaks: sampled };
    if (removeCgroup(c)) created.delete(c); else say(`bench: could not remove the cgroup ${c.dir}`);
    return st;
  };

  const res = {
    kind: 'scale',
    dataset: { name, baseFile: path.relative(ROOT, baseFile), queriesFile: path.relative(ROOT, queriesFile), gtFile: path.relative(ROOT, gtFile), n, nq, dim, metric, k: o.k, source, rawBytes: n * dim * 4 },
    params: {
      m: o.m, efConstruction: o.efConstruction, ef: o.scaleEf, k: o.k, inflight: o.inflight, oversampling: o.oversampling ?? 'addon default', rescore: o.rescore ?? 'addon default (true)',
      searchLimitBytes: limitBytes, buildLimitBytes, timeBoxSeconds: o.scaleTimeBox, laterPassSeconds: o.scaleLater, secondReadThreads: o.scaleReadThreads || null,
      streamRows: 10000,
    },
    cgroups: cg.kind ? { kind: cg.kind, parent: cg.parent } : { kind: null, reason: cg.reason },
    machine: machineInfo(), baseline: await idleBaselines({}), engines: {},
  };
  const files = () => {
    fs.mkdirSync(RESULTS, { recursive: true });
    // without the in-limit runs, its own files: the full run's results (README cites them) stay
    const jf = path.join(RESULTS, `scale-${kName(n)}${o.scaleNoLimits ? '-no-limits' : ''}.json`);
    res.goals = goals(res);
    res.durationSeconds = round((Date.now() - t0) / 1000, 1);
    fs.writeFileSync(jf, JSON.stringify(res, null, 1) + '\n');
    fs.writeFileSync(jf.replace(/\.json$/, '.md'), markdown(res));
    return jf;
  };

  const indexPathOf = (e, suffix = '') => path.join(indexDir, `${e}-${metric}-m${o.m}-efc${o.efConstruction}${suffix}`);

  async function build(e, limited, unlimitedSeconds) {
    const indexPath = indexPathOf(e, limited ? '-limited' : '');
    const recordFile = indexPath + '.build.json';
    const key = { engine: e, base: fileKey(baseFile), n, metric, m: o.m, efConstruction: o.efConstruction, streamRows: res.params.streamRows };
    if (!limited && o.reuse.has(e) && fs.existsSync(indexPath) && fs.existsSync(recordFile)) {
      try {
        const rec = JSON.parse(fs.readFileSync(recordFile, 'utf8'));
        if (sameKey(rec.key, key)) { say(`  [${e}] reusing the index built ${rec.builtAt} (--reuse-builds)`); return { ...rec.build, reused: true, builtAt: rec.builtAt, indexPath }; }
      } catch {}
    }
    fs.rmSync(indexPath, { recursive: true, force: true });
    try { fs.unlinkSync(recordFile); } catch {}
    const progressFile = indexPath + '.progress.json';
    try { fs.unlinkSync(progressFile); } catch {}
    let c = null;
    const timeoutS = limited ? (o.scaleBuildTimeout ?? Math.round(Math.min(3600, Math.max(600, 8 * (unlimitedSeconds || 300))))) : o.timeoutBuild;
    if (limited) {
      const why = dropCaches();
      if (why) return { status: 'skipped', reason: why };
      c = newCgroup(`build-${e}`, buildLimitBytes);
    }
    const w = c ? watchCgroup(c) : null;
    say(`  [${e}] building ${fmtInt(n)} vectors ${limited ? `inside ${fmtMiB(buildLimitBytes)} MiB (page cache dropped; timeout ${timeoutS} s)` : 'without a limit'} ...`);
    const b = await runChild({
      ...driver, tag: `${e} build${limited ? ' (limited)' : ''}`, logFile: logFile(e), timeoutS, cgroupProcs: c ? c.procs : undefined,
      cfg: { engine: e, metric, m: o.m, efConstruction: o.efConstruction, indexPath, phase: 'build', baseFile, n, streamRows: res.params.streamRows, progressFile },
    });
    const cgroup = c ? dropCgroup(c, w) : null;
    let progress = null;
    try { progress = JSON.parse(fs.readFileSync(progressFile, 'utf8')); } catch {}
    try { fs.unlinkSync(progressFile); } catch {}
    const out = {
      status: b.ok ? 'ok' : (cgroup && cgroup.oomKills > 0 ? 'oom-killed' : /timed out/.test(b.error || '') ? 'timed out' : 'failed'),
      error: b.error, limitBytes: limited ? buildLimitBytes : null, timeoutSeconds: timeoutS, processWallSeconds: round(b.wallS, 2), peakMonitored: b.peak, cgroup, progressAtEnd: progress, indexPath,
    };
    if (b.ok) {
      const r = b.result;
      Object.assign(out, {
        buildSeconds: r.buildSeconds, addSeconds: round(r.addSeconds, 3), graphSeconds: round(r.buildOnlySeconds, 3), phaseEndSeconds: r.phaseEndSeconds, cpuParallelism: r.cpuParallelism,
        threadsNominal: r.threadsNominal, diskBytes: r.diskBytes, diskBytesPerVector: r.diskBytesPerVector, rawVectorBytesPerVector: r.rawVectorBytesPerVector,
        quantization: r.quantization, walkBytesPerNode: r.walkBytesPerNode, version: r.version, memoryAfterBuild: r.memoryAfterBuild,
      });
      say(`  [${e}] built in ${r.buildSeconds} s (add ${round(r.addSeconds, 1)} s + graph ${round(r.buildOnlySeconds, 1)} s), ${fmtInt(r.diskBytes)} bytes on disk${cgroup ? `; cgroup peak ${fmtMiB(cgroup.peakBytes)} MiB` : ''}`);
      if (!limited) fs.writeFileSync(recordFile, JSON.stringify({ key, builtAt: new Date().toISOString(), build: out }, null, 1));
    } else say(`  [${e}] build ${out.status}: ${b.error}${progress ? ` (reached ${progress.phase} ${fmtInt(progress.done)}/${fmtInt(progress.total)} at ${progress.seconds} s)` : ''}`);
    if (limited) fs.rmSync(indexPath, { recursive: true, force: true });
    return out;
  }

  async function search(e, indexPath, mode, limited, readThreads) {
    let c = null;
    const where = limited ? `in ${fmtMiB(limitBytes)} MiB` : 'warm, no limit';
    if (limited) {
      const why = dropCaches();
      if (why) return { mode, limited, readThreads, status: 'skipped', error: why };
      c = newCgroup(`search-${e}`, limitBytes);
    }
    const w = c ? watchCgroup(c) : null;
    const s = await runChild({
      ...driver, tag: `${e} ${mode} ${where}${readThreads ? `, ${readThreads} read threads` : ''}`, logFile: logFile(e), timeoutS: Math.round(o.scaleTimeBox * 2 + 180), cgroupProcs: c ? c.procs : undefined,
      cfg: {
        engine: e, metric, indexPath, phase: 'scale-search', queriesFile, nq, gtFile, k: o.k, ef: o.scaleEf, mode, inflight: o.inflight,
        timeBoxSeconds: o.scaleTimeBox, laterSeconds: o.scaleLater, oversampling: o.oversampling, rescore: o.rescore,
        env: readThreads ? { HANNOY_READ_THREADS: String(readThreads) } : {},
      },
    });
    const cgroup = c ? dropCgroup(c, w) : null;
    const out = { mode, limited, limitBytes: limited ? limitBytes : null, readThreads: readThreads || null, status: s.ok ? 'ok' : (cgroup && cgroup.oomKills > 0 ? 'oom-killed' : 'failed'), error: s.error, processWallSeconds: round(s.wallS, 2), peakMonitored: s.peak, cgroup };
    if (s.ok) {
      const r = s.result;
      Object.assign(out, { label: r.label, recall: r.recall, recallQueries: r.recallQueries, firstPass: r.firstPass, bestLaterPass: r.bestLaterPass, passes: r.passes.map(({ queries, seconds, qps, complete, p50Ms, p99Ms }) => ({ queries, seconds, qps, complete, p50Ms, p99Ms })), openMs: r.openMs, seconds: r.seconds });
      say(`  [${e}] ${mode} ${where}${readThreads ? `, ${readThreads} read threads` : ''}: recall ${r.recall} (${r.recallQueries} queries), first pass ${fmtInt(r.firstPass?.qps)} QPS${r.firstPass && !r.firstPass.complete ? ` (${r.firstPass.queries} queries in the box)` : ''}, best later pass ${r.bestLaterPass ? fmtInt(r.bestLaterPass.qps) + ' QPS' : '—'}`);
    } else say(`  [${e}] ${mode} ${where}: ${out.status}: ${s.error}`);
    return out;
  }

  function warm(indexPath) {
    const t = Date.now();
    let bytes = 0;
    const buf = Buffer.alloc(16 * MiB);
    const walk = (p) => {
      const st = fs.statSync(p);
      if (st.isDirectory()) { for (const f of fs.readdirSync(p)) walk(path.join(p, f)); return; }
      const fd = fs.openSync(p, 'r');
      try { let r; while ((r = fs.readSync(fd, buf, 0, buf.length, null)) > 0) bytes += r; } finally { fs.closeSync(fd); }
    };
    walk(indexPath);
    return { bytes, seconds: round((Date.now() - t) / 1000, 2) };
  }

  say(`bench: --scale: ${name}: ${fmtInt(n)} × ${dim} (${fmtMiB(n * dim * 4)} MiB of f32), ${fmtInt(nq)} queries, ${metric}; engines: ${engines.join(', ')}`);
  for (const e of engines) {
    const r = res.engines[e] = { status: 'ok' };
    if (env.unavailable[e]) { Object.assign(r, { status: 'skipped', reason: env.unavailable[e] }); say(`  [${e}] skipped: ${r.reason}`); continue; }
    say(`\nbench: --scale: ${e}`);
    r.build = await build(e, false);
    if (r.build.status !== 'ok' && !r.build.reused) { Object.assign(r, { status: 'failed', reason: `build: ${r.build.error}` }); files(); continue; }
    const indexPath = r.build.indexPath;
    r.searches = [];
    r.warmCache = warm(indexPath);
    say(`  [${e}] page cache warmed: read ${fmtMiB(r.warmCache.bytes)} MiB of the index in ${r.warmCache.seconds} s`);
    for (const m of modes) r.searches.push(await search(e, indexPath, m, false, null));
    files();
    if (cg.kind) {
      for (const threads of [null, o.scaleReadThreads || null].filter((x, i) => i === 0 || x)) {
        for (const m of modes) { r.searches.push(await search(e, indexPath, m, true, threads)); files(); }
      }
      r.limitedBuild = await build(e, true, r.build.buildSeconds);
      if (r.limitedBuild.status === 'ok' && r.build.buildSeconds) r.limitedBuild.ratioToUnlimited = round(r.limitedBuild.buildSeconds / r.build.buildSeconds, 3);
    } else r.limitedBuild = { status: 'skipped', reason: cg.reason };
    files();
  }
  cleanup();
  const jf = files();
  say(`\nbench: wrote ${path.relative(ROOT, jf)} and ${path.basename(jf).replace(/\.json$/, '.md')}\n`);
  say(markdown(res));
  say('Goals (issue 10, scale):');
  for (const g of res.goals) say(`  [${g.met === null ? ' n/a ' : g.met ? ' met ' : 'NOT MET'}] ${g.goal}: ${g.measured ?? '—'} (target ${g.target})${g.detail ? ' — ' + g.detail : ''}`);
  say(`\nbench: done in ${res.durationSeconds} s`);

  // ------------------------------------------------------------ goals and report
  function find(e, mode, limited, threads) {
    return res.engines[e]?.searches?.find((s) => s.mode === mode && s.limited === limited && (s.readThreads || null) === (threads || null) && s.status === 'ok') || null;
  }
  function goals(res) {
    const G = [];
    const add = (goal, measured, target, met, detail) => G.push({ goal, measured, target, met, detail: detail || null });
    const bin = res.engines['hannoy-node-binary'], none = res.engines['hannoy-node'];
    {
      const g = `hannoy-node-binary build inside ${fmtMiB(buildLimitBytes)} MiB (page cache dropped) vs without a limit`;
      const lb = bin?.limitedBuild, ub = bin?.build;
      if (!lb || !ub) add(g, null, '≤ 2×', null, 'binary did not run');
      else if (lb.status === 'ok') add(g, lb.ratioToUnlimited, '≤ 2×', lb.ratioToUnlimited <= 2, `${lb.buildSeconds} s vs ${ub.buildSeconds} s`);
      else if (lb.status === 'timed out' || lb.status === 'oom-killed') add(g, lb.status === 'timed out' ? `> ${round(lb.timeoutSeconds / ub.buildSeconds, 2)}` : lb.status, '≤ 2×', false, `${lb.status}${lb.progressAtEnd ? `, reached ${lb.progressAtEnd.phase} ${lb.progressAtEnd.done}/${lb.progressAtEnd.total} at ${lb.progressAtEnd.seconds} s` : ''}`);
      else add(g, null, '≤ 2×', null, `${lb.status}: ${lb.reason || lb.error}`);
    }
    for (const threads of [null, o.scaleReadThreads || null].filter((x, i) => i === 0 || x)) {
      const g = `hannoy-node-binary ${o.inflight} in flight inside ${fmtMiB(limitBytes)} MiB vs none's in the same limit${threads ? `, HANNOY_READ_THREADS=${threads}` : ', default read threads'} (best later pass; recall within 1 point)`;
      const a = find('hannoy-node', inflightMode, true, threads), b = find('hannoy-node-binary', inflightMode, true, threads);
      if (!a || !b) { add(g, null, '≥ 20×, recall gap ≤ 1 pt', null, !cg.kind ? cg.reason : `${!a ? 'none' : 'binary'} has no in-limit figure`); continue; }
      const qa = (a.bestLaterPass || a.firstPass).qps, qb = (b.bestLaterPass || b.firstPass).qps;
      // recall: the warm run's, over every query (the same index and search; inside the limit a
      // slow engine answers only part of the queries in the time box)
      const wa = find('hannoy-node', inflightMode, false, null), wb = find('hannoy-node-binary', inflightMode, false, null);
      const ra = wa && wa.recallQueries === nq ? wa.recall : a.recall, rb = wb && wb.recallQueries === nq ? wb.recall : b.recall;
      const gap = round((ra - rb) * 100, 2);
      const ratio = round(qb / qa, 2), first = round(b.firstPass.qps / a.firstPass.qps, 2);
      add(g, `${ratio}× (first pass ${first}×), recall ${rb} vs ${ra}`, '≥ 20×, recall gap ≤ 1 pt', ratio >= 20 && gap <= 1,
        `binary ${fmtInt(qb)} QPS vs none ${fmtInt(qa)} QPS${a.bestLaterPass ? '' : ' (none: first pass only)'}, best later passes; first passes (cold) ${fmtInt(b.firstPass.qps)} vs ${fmtInt(a.firstPass.qps)}; recall gap ${gap} pt (${ra === a.recall && rb === b.recall ? 'in-limit runs' : 'warm runs, all queries'}; in the limit: ${b.recall} over ${b.recallQueries} queries vs ${a.recall} over ${a.recallQueries})`);
    }
    return G;
  }

  function markdown(res) {
    const L = [], ds = res.dataset, p = res.params, m = res.machine;
    L.push(`# Scale run: ${ds.name}`, '');
    L.push(`${fmtInt(ds.n)} base vectors × ${ds.dim} dimensions (${fmtMiB(ds.rawBytes)} MiB of f32), ${fmtInt(ds.nq)} queries, ${ds.metric}, recall@${ds.k} against exact ground truth (numpy brute force). ${ds.source}.`);
    L.push(`M = ${p.m}, efConstruction = ${p.efConstruction}; searches at ef ${p.ef}, k ${p.k}, oversampling ${p.oversampling}, rescore ${p.rescore}. The vectors are added ${fmtInt(p.streamRows)} at a time (addItems per part) and the graph built with build(). Machine: ${m.cores} cores, ${m.cpuModel}, ${(m.memoryBytes / 2 ** 30).toFixed(0)} GiB, Node ${m.node}, ${m.platform}, kernel ${m.kernel}; load average at start ${m.loadAverageAtStart.join(' / ')}. ${m.date}.`);
    L.push(res.cgroups.kind ? `Limits: memory cgroup ${res.cgroups.kind} (${res.cgroups.parent}), ${fmtMiB(p.searchLimitBytes)} MiB for searches, ${fmtMiB(p.buildLimitBytes)} MiB for builds; the page cache counts against the limit, and is dropped (\`sync; echo 3 > /proc/sys/vm/drop_caches\`) before every in-limit process, which starts fresh. Each search process is time-boxed at ${p.timeBoxSeconds} s (later passes: ${p.laterPassSeconds} s).` : `No in-limit figures: ${res.cgroups.reason}.`, '');
    L.push('## Indexes and builds', '');
    L.push(`| engine | quantization | disk bytes | bytes/vector | walk reads B/node (estimate) | build s, no limit (add + graph) | CPU× | build s in ${fmtMiB(p.buildLimitBytes)} MiB | in limit / no limit | in-limit build: cgroup peak MiB (sampled anon, dirty + writeback), major faults |`);
    L.push('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const [e, r] of Object.entries(res.engines)) {
      if (r.status === 'skipped' || !r.build) { L.push(`| ${e} | ${r.status}: ${r.reason ?? ''} | | | | | | | | |`); continue; }
      const b = r.build, lb = r.limitedBuild;
      const bcell = b.status === 'ok' || b.reused ? `${b.buildSeconds} (${b.addSeconds} + ${b.graphSeconds})${b.reused ? ' cached' : ''}` : `${b.status}: ${b.error}`;
      let lcell = '—', ratio = '—', cgc = '—';
      if (lb) {
        if (lb.status === 'ok') { lcell = `${lb.buildSeconds} (${lb.addSeconds} + ${lb.graphSeconds})`; ratio = `${lb.ratioToUnlimited}×`; }
        else if (lb.status === 'timed out') { lcell = `timed out at ${lb.timeoutSeconds}${lb.progressAtEnd ? ` (${lb.progressAtEnd.phase} ${fmtInt(lb.progressAtEnd.done)}/${fmtInt(lb.progressAtEnd.total)})` : ''}`; ratio = b.buildSeconds ? `> ${round(lb.timeoutSeconds / b.buildSeconds, 2)}×` : '—'; }
        else lcell = `${lb.status}${lb.error ? ': ' + String(lb.error).slice(0, 80) : lb.reason ? ': ' + String(lb.reason).slice(0, 80) : ''}`;
        if (lb.cgroup) cgc = `${fmtMiB(lb.cgroup.peakBytes)} (anon ≤ ${fmtMiB(lb.cgroup.sampledPeaks?.anonBytes)}, dirty ≤ ${fmtMiB(lb.cgroup.sampledPeaks?.dirtyWritebackBytes)}), ${fmtInt(lb.cgroup.majorFaults)}${lb.cgroup.oomKills ? `, ${lb.cgroup.oomKills} OOM kill${lb.cgroup.oomKills > 1 ? 's' : ''}` : ''}`;
      }
      L.push(`| ${e} | ${b.quantization ?? '—'} | ${fmtInt(b.diskBytes)} | ${b.diskBytesPerVector ?? '—'} | ${b.walkBytesPerNode?.bytes ?? '—'} | ${bcell} | ${b.cpuParallelism ?? '—'} | ${lcell} | ${ratio} | ${cgc} |`);
    }
    L.push('', 'Walk reads per node: from the formula, not measured (none: 4 + 4·d bytes of vector + the level-0 links; int8: d-byte code + links; binary: 12 + ceil(d/64)·8-byte code + links; links ≈ 9 + 2·m0 bytes, m0 = 2·M). Build s: add + graph, the driver\'s wall time around both.', '');
    L.push(`## Searches (ef ${p.ef}, k ${p.k})`, '');
    L.push('| engine | where | read threads | mode | recall@10 (queries) | first pass QPS (queries in s) | best later pass QPS | later passes | p50 / p99 ms (best later) | cgroup peak MiB (anon) | major faults |');
    L.push('| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const [e, r] of Object.entries(res.engines)) {
      for (const s of r.searches || []) {
        const where = s.limited ? `${fmtMiB(s.limitBytes)} MiB, cold` : 'no limit, warm';
        const thr = s.readThreads ?? 'default';
        if (s.status !== 'ok') { L.push(`| ${e} | ${where} | ${thr} | ${s.mode} | ${s.status}: ${String(s.error).slice(0, 80)} | | | | | ${s.cgroup ? fmtMiB(s.cgroup.peakBytes) : '—'} | |`); continue; }
        const fp = s.firstPass, bl = s.bestLaterPass;
        L.push(`| ${e} | ${where} | ${thr} | ${s.mode} | ${s.recall} (${s.recallQueries}) | ${fmtInt(fp.qps)} (${fp.queries} in ${fp.seconds}${fp.complete ? '' : ', cut'}) | ${bl ? fmtInt(bl.qps) + (bl.complete ? '' : ` (${bl.queries} q, cut)`) : '—'} | ${s.passes.length - 1} | ${bl ? `${bl.p50Ms?.toFixed(2)} / ${bl.p99Ms?.toFixed(2)}` : `${fp.p50Ms?.toFixed(2)} / ${fp.p99Ms?.toFixed(2)} (first)`} | ${s.cgroup ? `${fmtMiB(s.cgroup.peakBytes)} (${fmtMiB(s.cgroup.sampledPeaks?.anonBytes)})` : '—'} | ${s.cgroup ? fmtInt(s.cgroup.majorFaults) : '—'} |`);
      }
    }
    L.push('', `First pass: the first pass over the queries in the fresh process (cold inside the limit: the page cache was dropped), bounded by half the time box. Best later pass: the fastest of the passes after it, within the time box (a pass cut by the box counts the queries it answered). Recall over the queries the first pass answered. "default" read threads: one per core (${m.cores}).`, '');
    L.push('## Goals (issue 10, scale)', '');
    L.push('| goal | measured | target | met |', '| --- | --- | --- | --- |');
    for (const g of res.goals || []) L.push(`| ${g.goal} | ${g.measured ?? '—'}${g.detail ? ` (${g.detail})` : ''} | ${g.target} | ${g.met === null ? 'n/a' : g.met ? 'met' : 'not met'} |`);
    L.push('');
    return L.join('\n');
  }
}
