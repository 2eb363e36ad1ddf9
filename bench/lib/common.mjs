// Shared helpers for the benchmark harness: the matrix file format, recall, percentiles,
// /proc memory figures and timing. No dependencies beyond Node's standard library.
import fs from 'node:fs';
import os from 'node:os';

// Matrix file format (same as /work/shared/data): two little-endian u32 (rows, columns), then
// rows × columns little-endian f32 (vectors) or u32 (ground-truth ids), row-major.
export function readHeader(file) {
  const fd = fs.openSync(file, 'r');
  try {
    const h = Buffer.alloc(8);
    if (fs.readSync(fd, h, 0, 8, 0) !== 8) throw new Error(`${file}: shorter than its 8-byte header`);
    const rows = h.readUInt32LE(0), cols = h.readUInt32LE(4);
    const size = fs.fstatSync(fd).size;
    if (size !== 8 + rows * cols * 4) throw new Error(`${file}: header says ${rows}×${cols} but the file has ${size} bytes`);
    return { rows, cols };
  } finally { fs.closeSync(fd); }
}

// Reads rows [start, start + count) of a matrix file. kind: 'f32' or 'u32'.
export function readMatrix(file, { start = 0, count, kind = 'f32' } = {}) {
  const { rows, cols } = readHeader(file);
  if (count === undefined || count === null) count = rows - start;
  if (start + count > rows) throw new Error(`${file}: asked for rows ${start}..${start + count} but it has ${rows}`);
  const bytes = count * cols * 4;
  const buf = new ArrayBuffer(bytes);
  const fd = fs.openSync(file, 'r');
  try {
    let off = 0;
    const u8 = new Uint8Array(buf);
    while (off < bytes) {
      const n = fs.readSync(fd, u8, off, Math.min(bytes - off, 1 << 26), 8 + start * cols * 4 + off);
      if (n <= 0) throw new Error(`${file}: unexpected end of file`);
      off += n;
    }
  } finally { fs.closeSync(fd); }
  const data = kind === 'u32' ? new Uint32Array(buf) : new Float32Array(buf);
  return { rows: count, cols, data };
}

export function writeMatrix(file, rows, cols, typed) {
  const h = Buffer.alloc(8);
  h.writeUInt32LE(rows, 0); h.writeUInt32LE(cols, 4);
  const fd = fs.openSync(file + '.tmp', 'w');
  try {
    fs.writeSync(fd, h);
    fs.writeSync(fd, new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength));
  } finally { fs.closeSync(fd); }
  fs.renameSync(file + '.tmp', file);
}

// recall@k: |found ∩ truth| / k, averaged over queries. found: array of arrays (or a flat
// Uint32Array with stride k); truth: flat Uint32Array with stride gtK (gtK ≥ k).
export function recallAt(found, truth, gtK, k, nq) {
  let hit = 0;
  for (let q = 0; q < nq; q++) {
    const t = new Set();
    for (let j = 0; j < k; j++) t.add(truth[q * gtK + j]);
    const row = Array.isArray(found) ? found[q] : found.subarray(q * k, q * k + k);
    const seen = new Set();
    for (let j = 0; j < Math.min(k, row.length); j++) {
      const id = Number(row[j]);
      if (t.has(id) && !seen.has(id)) { hit++; seen.add(id); }
    }
  }
  return hit / (nq * k);
}

export function percentile(sorted, p) {
  if (!sorted.length) return null;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

export function latencySummary(latMs) {
  const s = Float64Array.from(latMs).sort();
  return { p50Ms: round(percentile(s, 50), 4), p99Ms: round(percentile(s, 99), 4), meanMs: round(s.reduce((a, b) => a + b, 0) / (s.length || 1), 4) };
}

export function round(x, d = 3) {
  if (x === null || x === undefined || !Number.isFinite(x)) return x ?? null;
  const f = 10 ** d;
  return Math.round(x * f) / f;
}

// Memory and thread figures of a process from /proc/<pid>/status, in bytes.
export function procStatus(pid = 'self') {
  let text;
  try { text = fs.readFileSync(`/proc/${pid}/status`, 'utf8'); } catch { return null; }
  const out = {};
  for (const line of text.split('\n')) {
    const m = /^(VmRSS|VmHWM|RssAnon|RssFile|RssShmem|VmSwap|Threads):\s+(\d+)(?:\s+kB)?/.exec(line);
    if (m) out[m[1]] = m[1] === 'Threads' ? Number(m[2]) : Number(m[2]) * 1024;
  }
  return out;
}

// Resident and anonymous bytes from /proc/<pid>/statm (cheaper than status: no text to parse).
// statm: size resident shared text lib data dt, in pages; shared = RssFile + RssShmem, so
// resident - shared = RssAnon.
const PAGE = 4096;
export function procStatm(pid) {
  let t;
  try { t = fs.readFileSync(`/proc/${pid}/statm`, 'latin1'); } catch { return null; }
  const f = t.split(' ');
  const resident = Number(f[1]) * PAGE, shared = Number(f[2]) * PAGE;
  return { rss: resident, anon: resident - shared };
}

// Sum of Private_Dirty + Private_Clean over anonymous mappings would need smaps; RssAnon is the
// kernel's count of anonymous resident pages, which is the "private memory" the issue asks for.
export function memFigures() {
  const s = procStatus('self') || {};
  return { vmRSS: s.VmRSS ?? null, vmHWM: s.VmHWM ?? null, rssAnon: s.RssAnon ?? null, rssFile: s.RssFile ?? null, threads: s.Threads ?? null };
}

export function cpuSeconds() {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

export const now = () => Number(process.hrtime.bigint()) / 1e6; // ms

// Bytes on disk of a file or directory tree: per file the smaller of its apparent size and its
// allocated blocks, so that a sparse file (an LMDB data.mdb stretched to its map size) counts
// what it really holds, and a small file does not count a whole 4 KiB block.
export function dirBytes(p) {
  const st = fs.statSync(p);
  if (!st.isDirectory()) return Math.min(st.size, st.blocks * 512);
  let total = 0;
  for (const e of fs.readdirSync(p)) total += dirBytes(p + '/' + e);
  return total;
}

export function dirApparentBytes(p) {
  const st = fs.statSync(p);
  if (!st.isDirectory()) return st.size;
  let total = 0;
  for (const e of fs.readdirSync(p)) total += dirApparentBytes(p + '/' + e);
  return total;
}

// Allocated (on-disk) bytes, which differ from the apparent size for sparse files (LMDB's data.mdb
// is not sparse, but its map size may exceed what it holds).
export function dirAllocatedBytes(p) {
  const st = fs.statSync(p);
  if (!st.isDirectory()) return st.blocks * 512;
  let total = 0;
  for (const e of fs.readdirSync(p)) total += dirAllocatedBytes(p + '/' + e);
  return total;
}

export function machineInfo() {
  let cpuModel = null;
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'));
    cpuModel = m ? m[1].trim() : null;
  } catch {}
  let flags = [];
  try {
    const m = /^flags\s*:\s*(.+)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) flags = m[1].split(/\s+/).filter((f) => ['avx2', 'fma', 'avx512f', 'neon', 'asimd'].includes(f));
  } catch {}
  return {
    cores: os.availableParallelism ? os.availableParallelism() : os.cpus().length,
    cpuModel: cpuModel || (os.cpus()[0] && os.cpus()[0].model) || null,
    cpuFlags: flags,
    memoryBytes: os.totalmem(),
    platform: `${process.platform}-${process.arch}`,
    kernel: os.release(),
    node: process.version,
    loadAverageAtStart: os.loadavg().map((x) => round(x, 2)),
    date: new Date().toISOString(),
  };
}

// For child processes: parse `--config <json file>` and write the result JSON file at the end.
export function childConfig() {
  const i = process.argv.indexOf('--config');
  if (i < 0) throw new Error('missing --config <file>');
  return JSON.parse(fs.readFileSync(process.argv[i + 1], 'utf8'));
}

export function writeResult(cfg, obj) {
  fs.writeFileSync(cfg.resultFile + '.tmp', JSON.stringify(obj, null, 1));
  fs.renameSync(cfg.resultFile + '.tmp', cfg.resultFile);
}

export function log(...a) { process.stderr.write(a.join(' ') + '\n'); }
