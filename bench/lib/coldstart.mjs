// The cold-start run (`npm run bench -- --cold-start`, issue 12): on the indexes the scale run
// built (bench/data/indexes/synth384-<n>-scale/: hannoy-node, and hannoy-node-binary when it is
// there), each case in a fresh process (bench/engines/coldstart-child.mjs), k --k, ef
// --scale-ef, one awaited query at a time:
//   - page cache warm (the index directory, node and the addon read through just before) and dropped (`sync; echo 3
//     > /proc/sys/vm/drop_caches`, root only; skipped with a message otherwise);
//   - each without prefetch, with db.reader(0, { prefetch }) and with await reader.warm({ bytes })
//     before the queries, prefetch / warm bytes = --cold-start-fraction (10 %) of data.mdb;
//   - measured: open + first query (Database.open + db.reader + the first search; warm() apart),
//     p50 / p99 of the first 100 queries, QPS of the first and of the second pass over the queries;
// and writes bench/results/cold-start-<n>.{json,md}. It builds nothing: run --scale first.
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { dropCaches } from './cgroup.mjs';

const VARIANTS = ['none', 'prefetch', 'warm'];
// warm: data.mdb in the page cache in 4 KiB pages, as a process that used it at random (LMDB,
// the build) leaves it; warm-read: read through in order, in large folios, as a copy or `cat`
// leaves it (a fresh process maps those much faster); dropped: not in the page cache.
const CACHES = ['warm', 'warm-read', 'dropped'];
const WARM = { warm: 'random', 'warm-read': 'sequential' };
const ENGINES = ['hannoy-node', 'hannoy-node-binary'];

export async function coldStartRun(h) {
  const { o, say, die, runChild, fmtInt, fmtMiB, kName, round, machineInfo, readHeader, DATA, RESULTS, ROOT, BENCH, MiB } = h;
  const t0 = Date.now();
  const n = o.scaleN, name = `synth384-${kName(n)}`, metric = o.metric;
  const fraction = o.coldStartFraction;
  const queriesFile = path.join(DATA, `${name}.queries.f32`);
  const gtFile = path.join(DATA, `${name}.gt-${metric}-k${o.k}.u32`);
  if (!fs.existsSync(queriesFile)) die(`--cold-start: ${path.relative(ROOT, queriesFile)} not found: run \`npm run bench -- --scale${n !== 600000 ? ` --scale-n ${n}` : ''}\` first`);
  const haveGt = fs.existsSync(gtFile);
  if (!haveGt) say(`bench: --cold-start: no ground truth ${path.relative(ROOT, gtFile)}: no recall`);
  const qh = readHeader(queriesFile), nq = qh.rows;
  const indexDir = path.join(DATA, 'indexes', `${name}-scale`);
  const engines = (o.onlyGiven ? o.only : ENGINES);
  for (const e of engines) if (!ENGINES.includes(e)) die(`--cold-start runs ${ENGINES.join(', ')}, not ${e}`);
  fs.mkdirSync(path.join(DATA, 'logs'), { recursive: true });
  const logFile = (e) => path.join(DATA, 'logs', `${name}-cold-start-${e}.log`);
  const child = { cmd: process.execPath, args: [path.join(BENCH, 'engines', 'coldstart-child.mjs')] };
  if (process.env.HANNOY_READER_PREFETCH_MEMORY !== undefined) {
    say(`bench: --cold-start: unsetting HANNOY_READER_PREFETCH_MEMORY=${process.env.HANNOY_READER_PREFETCH_MEMORY} for the child processes (prefetch is passed to db.reader where a case asks for it)`);
    delete process.env.HANNOY_READER_PREFETCH_MEMORY;
  }
  // can we drop the page cache?
  const notRoot = typeof process.getuid === 'function' && process.getuid() !== 0;
  let dropWhy = notRoot ? 'not root: dropping the page cache (/proc/sys/vm/drop_caches) needs root' : dropCaches();
  if (dropWhy) say(`bench: --cold-start: ${dropWhy}: skipping the page-cache-dropped cases`);

  const res = {
    kind: 'cold-start',
    dataset: { name, queriesFile: path.relative(ROOT, queriesFile), gtFile: haveGt ? path.relative(ROOT, gtFile) : null, n, nq, dim: qh.cols, metric, k: o.k },
    params: { k: o.k, ef: o.scaleEf, fraction, firstN: 100, passes: 2, reps: o.coldStartReps, passTimeBoxSeconds: o.coldStartTimeBox, mode: 'one awaited reader.search at a time', open: 'Database.open(dir, { readOnly: true })' },
    dropCaches: dropWhy ? { ok: false, reason: dropWhy } : { ok: true },
    machine: { ...machineInfo(), disk: diskInfo(indexDir) }, addon: addonInfo(), engines: {},
  };
  const files = () => {
    fs.mkdirSync(RESULTS, { recursive: true });
    const jf = path.join(RESULTS, `cold-start-${kName(n)}.json`);
    res.goals = goals(res);
    res.durationSeconds = round((Date.now() - t0) / 1000, 1);
    fs.writeFileSync(jf, JSON.stringify(res, null, 1) + '\n');
    fs.writeFileSync(jf.replace(/\.json$/, '.md'), markdown(res));
    return jf;
  };

  // puts data.mdb into the page cache in the state a warm case names (bench/py/page_cache.py)
  // (seconds taken), or throws
  function placeData(file, cache) {
    const r = spawnSync('python3', [path.join(BENCH, 'py', 'page_cache.py'), WARM[cache], file], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`bench/py/page_cache.py ${WARM[cache]} failed: ${(r.stderr || r.error?.message || `exit ${r.status}`).trim()}`);
    return Number(r.stdout.trim());
  }

  // reads every other file of the index directory through the page cache, and the programs the
  // search process runs (node and the addon's .node files): after a dropped-cache case they
  // are on the disk too, and their page faults on the read threads counted as the walk's
  function warmCache(dir) {
    const t = Date.now();
    let bytes = 0;
    const buf = Buffer.alloc(16 * MiB);
    const addonDir = process.env.HANNOY_BENCH_ADDON ? path.dirname(process.env.HANNOY_BENCH_ADDON) : ROOT;
    const programs = [process.execPath, ...fs.readdirSync(addonDir).filter((f) => f.endsWith('.node')).map((f) => path.join(addonDir, f))];
    for (const file of [...fs.readdirSync(dir).filter((f) => f !== 'data.mdb').map((f) => path.join(dir, f)), ...programs]) {
      const fd = fs.openSync(file, 'r');
      try { let r; while ((r = fs.readSync(fd, buf, 0, buf.length, null)) > 0) bytes += r; } finally { fs.closeSync(fd); }
    }
    return { bytes, seconds: round((Date.now() - t) / 1000, 2) };
  }

  say(`bench: --cold-start: ${name}: ${fmtInt(nq)} queries, k ${o.k}, ef ${o.scaleEf}, one awaited query at a time; prefetch / warm bytes = ${fraction * 100} % of data.mdb; engines: ${engines.join(', ')}`);
  for (const e of engines) {
    const indexPath = path.join(indexDir, `${e}-${metric}-m${o.m}-efc${o.efConstruction}`);
    const dataFile = path.join(indexPath, 'data.mdb');
    const r = res.engines[e] = { status: 'ok', indexPath: path.relative(ROOT, indexPath) };
    if (!fs.existsSync(dataFile) || !fs.existsSync(indexPath + '.build.json')) {
      Object.assign(r, { status: 'skipped', reason: `no complete index at ${path.relative(ROOT, indexPath)} (the scale run builds it: npm run bench -- --scale, or without its in-limit runs --scale --scale-no-limits)` });
      say(`  [${e}] skipped: ${r.reason}`);
      continue;
    }
    try { const rec = JSON.parse(fs.readFileSync(indexPath + '.build.json', 'utf8')); r.build = rec.build; r.builtAt = rec.builtAt; } catch {}
    const st = fs.statSync(dataFile);
    r.dataMdbBytes = st.size;
    r.dataMdbAllocatedBytes = st.blocks * 512;
    r.bytes = Math.round(fraction * st.size);
    say(`\nbench: --cold-start: ${e}: data.mdb ${fmtInt(st.size)} bytes (${fmtMiB(st.size)} MiB); prefetch / warm ${fmtInt(r.bytes)} bytes (${fmtMiB(r.bytes)} MiB)`);
    r.cases = [];
    for (const cache of CACHES) for (const variant of VARIANTS) r.cases.push({ cache, variant, bytes: variant === 'none' ? null : r.bytes, runs: [] });
    // Each case runs --cold-start-reps times, the cases taking turns (the machine's speed drifts
    // between minutes: one build's pass 2 ran at 2,900 and at 4,600 QPS in two runs); a case
    // reports its median run.
    let placed = null; // the state data.mdb was last put in, while nothing has changed it
    for (let rep = 1; rep <= o.coldStartReps; rep++) {
      for (const c of r.cases) {
        const { cache, variant } = c;
        if (cache === 'dropped' && dropWhy) { Object.assign(c, { status: 'skipped', reason: dropWhy }); continue; }
        const run = { rep };
        c.runs.push(run);
        if (cache !== 'dropped') {
          // Placed again until data.mdb is all in the page cache: a read through sometimes left
          // part of it out (14 MB of 1.2 GB, seen with 22 GB free), and those pages' major
          // faults then made a "warm" case partly cold.
          let why = null;
          for (let tries = 1; tries <= 3; tries++) {
            const cached = resident(dataFile);
            let placedSeconds = null;
            if (placed !== cache || cached === null || cached < st.size - 64 * 1024) {
              try { placedSeconds = placeData(dataFile, cache); } catch (err) { why = err.message; break; }
            }
            placed = cache;
            run.warmCache = { ...warmCache(indexPath), placedSeconds, tries };
            const now = resident(dataFile);
            if (now === null || now >= st.size - 64 * 1024) break;
            placed = null;
          }
          if (why) { placed = null; Object.assign(run, { status: 'skipped', reason: why }); say(`  [${e} ${cache}] skipped: ${why}`); settle(c); continue; }
        }
        else {
          placed = null;
          const why = dropCaches();
          if (why) { Object.assign(run, { status: 'skipped', reason: why }); settle(c); continue; }
        }
        run.residentBefore = resident(dataFile);
        const tag = `${e} ${cache === 'warm-read' ? 'warm (read through)' : cache} cache, ${variant === 'none' ? 'no prefetch' : variant === 'prefetch' ? 'prefetch' : 'warm()'}, run ${rep} of ${o.coldStartReps}`;
        const s = await runChild({
          ...child, tag, logFile: logFile(e), timeoutS: Math.round(o.coldStartTimeBox * 2 + 180),
          cfg: { engine: e, cache, variant, bytes: c.bytes, indexPath, queriesFile, gtFile: haveGt ? gtFile : null, nq, k: o.k, ef: o.scaleEf, firstN: 100, passes: 2, passTimeBoxSeconds: o.coldStartTimeBox },
        });
        run.residentAfter = resident(dataFile);
        run.processWallSeconds = round(s.wallS, 2);
        run.peakMonitored = s.peak;
        if (!s.ok) { Object.assign(run, { status: 'failed', error: s.error }); say(`  [${tag}] failed: ${s.error}`); settle(c); files(); continue; }
        const x = s.result;
        const [p1, p2] = x.passes;
        Object.assign(run, {
          status: 'ok', importMs: x.importMs, openMs: x.openMs, readerMs: x.readerMs, warm: x.warm, firstQueryMs: x.firstQueryMs,
          openFirstQueryMs: x.openFirstQueryMs, readyMs: x.readyMs, recall: x.recall, recallQueries: x.recallQueries,
          first100: { queries: p1.firstN, p50Ms: p1.p50FirstNMs, p99Ms: p1.p99FirstNMs, meanMs: p1.meanFirstNMs },
          pass1: pick(p1), pass2: p2 ? pick(p2) : null,
          pass1OverPass2: p2 && p1.complete && p2.complete ? round(p1.qps / p2.qps, 3) : null,
          stages: x.stages, memoryAtEnd: x.memoryAtEnd,
        });
        say(`  [${tag}] open + first query ${run.openFirstQueryMs} ms${run.warm ? ` (warm() ${run.warm.ms} ms apart: ${fmtMiB(run.warm.bytes)} MiB, ${fmtInt(run.warm.nodes)} nodes)` : ''}; first 100: p50 ${run.first100.p50Ms} / p99 ${run.first100.p99Ms} ms; pass 1 ${fmtInt(run.pass1.qps)} QPS, pass 2 ${run.pass2 ? fmtInt(run.pass2.qps) : '—'} QPS (${run.pass1OverPass2 ?? '—'}×); recall ${run.recall}; major faults ${fmtInt(run.stages.all.majorFaults)}, read ${fmtMiB(run.stages.all.readBytes)} MiB`);
        settle(c);
        files();
      }
    }
    files();
  }
  const jf = files();
  say(`\nbench: wrote ${path.relative(ROOT, jf)} and ${path.basename(jf).replace(/\.json$/, '.md')}\n`);
  say(markdown(res));
  say('Goals (issue 12, cold start):');
  for (const g of res.goals) say(`  [${g.met === null ? ' n/a ' : g.met ? ' met ' : 'NOT MET'}] ${g.goal}: ${g.measured ?? '—'} (target ${g.target})${g.detail ? ' — ' + g.detail : ''}`);
  say(`\nbench: done in ${res.durationSeconds} s`);

  // ------------------------------------------------------------ helpers
  // A case's figures are those of its median run: by pass 1 / pass 2 with the page cache warm
  // (that goal's measure; runs with a pass cut by the time box only when all were), by the
  // first 100 queries' p50 with it dropped; of an even number, the worse of the middle two.
  // The runs stay listed.
  function settle(c) {
    let ok = c.runs.filter((x) => x.status === 'ok');
    const failed = c.runs.find((x) => x.status !== 'ok');
    for (const k of Object.keys(c)) if (!['cache', 'variant', 'bytes', 'runs'].includes(k)) delete c[k];
    if (!ok.length) { Object.assign(c, { status: failed?.status || 'skipped', reason: failed?.reason, error: failed?.error }); return; }
    const warmCase = c.cache !== 'dropped';
    if (warmCase && ok.some((x) => x.pass1OverPass2 !== null)) ok = ok.filter((x) => x.pass1OverPass2 !== null);
    // larger is better under both keys, so the lower middle is the worse
    const key = warmCase ? (x) => x.pass1OverPass2 ?? -1 : (x) => -x.first100.p50Ms;
    const sorted = ok.slice().sort((a, b) => key(a) - key(b));
    const { rep, ...median } = sorted[(sorted.length - 1) >> 1];
    Object.assign(c, median, { medianOf: ok.length, medianRun: rep });
  }

  function pick(p) { return { queries: p.queries, complete: p.complete, seconds: p.seconds, qps: p.qps, p50Ms: p.p50Ms, p99Ms: p.p99Ms, meanMs: p.meanMs }; }

  // bytes of the file in the page cache (fincore, util-linux), or null
  function resident(file) {
    const r = spawnSync('fincore', ['-J', '--bytes', '-o', 'RES,SIZE', file], { encoding: 'utf8' });
    if (r.status !== 0) return null;
    try { const j = JSON.parse(r.stdout).fincore[0]; return Number(j.res); } catch { return null; }
  }

  // which build of the addon ran (the .node file's time; the index's build time is in its record)
  function addonInfo() {
    const out = { module: process.env.HANNOY_BENCH_ADDON || path.join(ROOT, 'index.js') };
    try { out.version = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version; } catch {}
    try {
      const dir = path.dirname(out.module);
      const f = fs.readdirSync(dir).filter((x) => x.endsWith('.node'));
      out.binaries = f.map((x) => ({ file: x, bytes: fs.statSync(path.join(dir, x)).size, mtime: fs.statSync(path.join(dir, x)).mtime.toISOString() }));
    } catch {}
    return out;
  }

  function diskInfo(dir) {
    const out = {};
    try {
      const r = spawnSync('df', ['-T', '-P', dir], { encoding: 'utf8' });
      const f = r.stdout.trim().split('\n').pop().split(/\s+/);
      Object.assign(out, { device: f[0], fsType: f[1], mount: f[6] });
      const dev = path.basename(out.device).replace(/p?\d+$/, '');
      const rot = fs.readFileSync(`/sys/block/${dev}/queue/rotational`, 'utf8').trim();
      out.rotational = rot === '1';
      try { out.scheduler = fs.readFileSync(`/sys/block/${dev}/queue/scheduler`, 'utf8').trim(); } catch {}
      try { out.readAheadKiB = Number(fs.readFileSync(`/sys/block/${dev}/queue/read_ahead_kb`, 'utf8').trim()); } catch {}
    } catch {}
    return out;
  }

  function find(e, cache, variant) {
    return res.engines[e]?.cases?.find((c) => c.cache === cache && c.variant === variant && c.status === 'ok') || null;
  }

  function goals(res) {
    const G = [];
    const add = (goal, measured, target, met, detail) => G.push({ goal, measured, target, met, detail: detail || null });
    for (const [e, r] of Object.entries(res.engines)) {
      if (r.status !== 'ok') { add(`${e}: every goal`, null, '—', null, r.reason); continue; }
      for (const cache of ['warm', 'warm-read']) for (const v of ['none', 'prefetch']) {
        const g = `${e}, page cache warm (${cache === 'warm' ? '4 KiB pages' : 'read through'}), ${v === 'none' ? 'without prefetch' : `with prefetch ${fmtMiB(r.bytes)} MiB`}: QPS of the first pass vs the second`;
        const c = find(e, cache, v);
        if (!c) add(g, null, '≥ 0.7×', null, 'the case did not run');
        else if (c.pass1OverPass2 === null) add(g, null, '≥ 0.7×', null, 'a pass was cut by the time box');
        else add(g, `${c.pass1OverPass2}×`, '≥ 0.7×', c.pass1OverPass2 >= 0.7, `${fmtInt(c.pass1.qps)} vs ${fmtInt(c.pass2.qps)} QPS`);
      }
      {
        const g = `${e}, page cache dropped: p50 of the first 100 queries with prefetch ${fmtMiB(r.bytes)} MiB (${fraction * 100} % of data.mdb) vs without`;
        const a = find(e, 'dropped', 'none'), b = find(e, 'dropped', 'prefetch');
        if (res.dropCaches && !res.dropCaches.ok) add(g, null, '≤ 0.5×', null, res.dropCaches.reason);
        else if (!a || !b) add(g, null, '≤ 0.5×', null, `${!a ? 'no prefetch' : 'prefetch'} case did not run`);
        else { const x = round(b.first100.p50Ms / a.first100.p50Ms, 3); add(g, `${x}×`, '≤ 0.5×', x <= 0.5, `${b.first100.p50Ms} ms vs ${a.first100.p50Ms} ms`); }
      }
    }
    return G;
  }

  function markdown(res) {
    const L = [], ds = res.dataset, p = res.params, m = res.machine;
    const lbl = { none: 'no prefetch', prefetch: 'prefetch', warm: 'warm()' };
    const cacheLbl = { warm: 'warm, 4 KiB pages', 'warm-read': 'warm, read through', dropped: 'dropped' };
    L.push(`# Cold start: ${ds.name}`, '');
    L.push(`The indexes of the scale run (\`bench/data/indexes/${ds.name}-scale/\`, M = ${o.m}, efConstruction = ${o.efConstruction}), ${fmtInt(ds.n)} vectors × ${ds.dim}, ${ds.metric}; ${fmtInt(ds.nq)} queries (\`${ds.queriesFile}\`), k ${p.k}, ef ${p.ef}, one awaited \`reader.search\` at a time, in a fresh process per case; recall@${p.k} over the first pass against ${ds.gtFile ? `\`${ds.gtFile}\`` : '— (no ground truth)'}.`);
    L.push(`Machine: ${m.cores} cores, ${m.cpuModel}, ${(m.memoryBytes / 2 ** 30).toFixed(0)} GiB, Node ${m.node}, ${m.platform}, kernel ${m.kernel}; disk ${m.disk.device ?? '?'} (${m.disk.fsType ?? '?'}${m.disk.rotational !== undefined ? `, reported ${m.disk.rotational ? 'rotational' : 'non-rotational'}` : ''}${m.disk.readAheadKiB !== undefined ? `, read-ahead ${m.disk.readAheadKiB} KiB` : ''}); load average at start ${m.loadAverageAtStart.join(' / ')}. ${m.date}. Addon ${res.addon.version ?? '?'}${(res.addon.binaries || []).map((x) => `, ${x.file} of ${x.mtime}`).join('')}.`);
    L.push(`Cases: page cache **warm, 4 KiB pages** (data.mdb dropped from the page cache and read again one 4 KiB page at a time with read-ahead off, as a process that used it at random, LMDB or the build, leaves it; \`bench/py/page_cache.py random\`), **warm, read through** (dropped and read again in order, so the cache holds it in large folios, as a copy or \`cat\` leaves it: a fresh process maps those much faster; \`page_cache.py sequential\`), the other files of the index directory, node and the addon read through just before the process starts in both; or **dropped** (\`sync; echo 3 > /proc/sys/vm/drop_caches\` just before${res.dropCaches.ok ? '' : `; skipped: ${res.dropCaches.reason}`}); each with **no prefetch**, **prefetch** (\`db.reader(0, { prefetch })\`: read in the background, the Promise does not wait) and **warm()** (\`await reader.warm({ bytes })\` before the first query), prefetch / warm bytes = ${p.fraction * 100} % of data.mdb. Each case ran ${p.reps} times, the cases taking turns; a row is the case's median run (by pass 1 / pass 2 with the page cache warm, by the first 100 queries' p50 with it dropped), and its last column lists every run.`, '');
    for (const [e, r] of Object.entries(res.engines)) {
      L.push(`## ${e}`, '');
      if (r.status !== 'ok') { L.push(`Skipped: ${r.reason}`, ''); continue; }
      L.push(`data.mdb ${fmtInt(r.dataMdbBytes)} bytes (${fmtMiB(r.dataMdbBytes)} MiB); prefetch / warm ${fmtInt(r.bytes)} bytes (${fmtMiB(r.bytes)} MiB)${r.build?.quantization ? `; quantization ${r.build.quantization}` : ''}${r.builtAt ? `; built ${r.builtAt}` : ''}.`, '');
      L.push('| page cache | variant | open + first query ms (open / reader / first search) | warm() ms (MiB, nodes) | first 100: p50 / p99 ms | pass 1 QPS (s) | pass 2 QPS | pass 1 / pass 2 | recall@10 | data.mdb cached before → after MiB | major faults | read MiB | each run: pass 1 / pass 2 · first-100 p50 ms |');
      L.push('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |');
      for (const c of r.cases) {
        if (c.status !== 'ok') { L.push(`| ${cacheLbl[c.cache]} | ${lbl[c.variant]} | ${c.status}: ${String(c.reason || c.error).slice(0, 100)} | | | | | | | | | | |`); continue; }
        L.push(`| ${cacheLbl[c.cache]} | ${lbl[c.variant]} | ${c.openFirstQueryMs.toFixed(1)} (${c.openMs.toFixed(1)} / ${c.readerMs.toFixed(1)} / ${c.firstQueryMs.toFixed(1)}) | ${c.warm ? `${c.warm.ms.toFixed(0)} (${fmtMiB(c.warm.bytes)}, ${fmtInt(c.warm.nodes)})` : '—'} | ${c.first100.p50Ms.toFixed(2)} / ${c.first100.p99Ms.toFixed(2)} | ${fmtInt(c.pass1.qps)} (${c.pass1.seconds.toFixed(2)}${c.pass1.complete ? '' : `, cut at ${c.pass1.queries} q`}) | ${c.pass2 ? fmtInt(c.pass2.qps) : '—'} | ${c.pass1OverPass2 ?? '—'}${c.pass1OverPass2 !== null ? '×' : ''} | ${c.recall ?? '—'} | ${fmtMiB(c.residentBefore)} → ${fmtMiB(c.residentAfter)} | ${fmtInt(c.stages.all.majorFaults)} | ${fmtMiB(c.stages.all.readBytes)} | ${c.runs.filter((x) => x.status === 'ok').map((x) => `${x.pass1OverPass2 ?? '—'}× · ${x.first100.p50Ms.toFixed(2)}`).join('; ')} |`);
      }
      L.push('');
    }
    L.push(`Open + first query: \`Database.open\` + \`db.reader\` + the first search, in the fresh process (the addon and the queries loaded before the clock starts); warm() is timed apart (between the reader and the first query). First 100: the latencies of the first pass's first 100 queries (the first query included). Pass 1 / pass 2: full passes over the ${fmtInt(ds.nq)} queries in order, pass 1 starting with the first query (after warm() where there is one); a pass is cut after ${p.passTimeBoxSeconds} s. Cached: data.mdb bytes in the page cache (fincore) before the process starts and after it ends. Major faults and read MiB (\`/proc/self/io\` read_bytes: what the process, the addon's threads included, fetched from the disk): the process's, from the open to the end.`, '');
    L.push('## Goals (issue 12, cold start)', '');
    L.push('| goal | measured | target | met |', '| --- | --- | --- | --- |');
    for (const g of res.goals || []) L.push(`| ${g.goal} | ${g.measured ?? '—'}${g.detail ? ` (${g.detail})` : ''} | ${g.target} | ${g.met === null ? 'n/a' : g.met ? 'met' : 'not met'} |`);
    L.push('');
    return L.join('\n');
  }
}
