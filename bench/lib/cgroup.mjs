// Memory cgroups for the scale run: a limit that counts the page cache, cgroup v1
// (/sys/fs/cgroup/memory/NAME: memory.limit_in_bytes) or v2 (/sys/fs/cgroup/NAME: memory.max),
// and dropping the page cache. Needs root; every function says why when it cannot.
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';

const V1 = '/sys/fs/cgroup/memory';
const V2 = '/sys/fs/cgroup';

// { kind: 'v1' | 'v2', parent } or { kind: null, reason }
export function detectCgroups(parentOverride) {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return { kind: null, reason: 'not root: memory cgroups and dropping the page cache need root' };
  let kind = null, parent = null;
  if (fs.existsSync(path.join(V2, 'cgroup.controllers'))) {
    kind = 'v2'; parent = parentOverride || V2;
    const ctl = read(path.join(parent, 'cgroup.controllers')) || '';
    if (!ctl.split(/\s+/).includes('memory')) return { kind: null, reason: `cgroup v2 at ${parent} has no memory controller` };
    const sub = read(path.join(parent, 'cgroup.subtree_control')) || '';
    if (!sub.split(/\s+/).includes('memory')) {
      try { fs.writeFileSync(path.join(parent, 'cgroup.subtree_control'), '+memory'); }
      catch (e) { return { kind: null, reason: `cgroup v2: cannot enable the memory controller in ${parent}/cgroup.subtree_control: ${e.message}` }; }
    }
  } else if (fs.existsSync(path.join(parentOverride || V1, 'memory.limit_in_bytes'))) {
    kind = 'v1'; parent = parentOverride || V1;
  } else return { kind: null, reason: `no memory cgroup hierarchy (neither ${V2}/cgroup.controllers nor ${V1}/memory.limit_in_bytes)` };
  // can we create one?
  const probe = path.join(parent, `hannoy-bench-probe-${process.pid}`);
  try { fs.mkdirSync(probe); fs.rmdirSync(probe); }
  catch (e) { return { kind: null, reason: `cannot create a cgroup in ${parent}: ${e.message}` }; }
  return { kind, parent };
}

// Creates the cgroup NAME with a memory limit of `bytes` (swap too, where there is a knob).
export function createCgroup(cg, name, bytes) {
  const dir = path.join(cg.parent, name);
  if (fs.existsSync(dir)) removeCgroup({ ...cg, dir });
  fs.mkdirSync(dir);
  if (cg.kind === 'v1') {
    fs.writeFileSync(path.join(dir, 'memory.limit_in_bytes'), String(bytes));
    try { fs.writeFileSync(path.join(dir, 'memory.memsw.limit_in_bytes'), String(bytes)); } catch {} // no swap accounting: fine
  } else {
    fs.writeFileSync(path.join(dir, 'memory.max'), String(bytes));
    try { fs.writeFileSync(path.join(dir, 'memory.swap.max'), '0'); } catch {}
  }
  return { ...cg, dir, name, limitBytes: bytes, procs: path.join(dir, 'cgroup.procs') };
}

// What the cgroup saw: peak usage, limit hits, OOM kills, page-cache and anonymous bytes now,
// major faults.
export function cgroupStats(c) {
  const stat = parseKv(read(path.join(c.dir, 'memory.stat')));
  if (c.kind === 'v1') {
    const oom = parseKv(read(path.join(c.dir, 'memory.oom_control')));
    return {
      limitBytes: c.limitBytes, peakBytes: num(read(path.join(c.dir, 'memory.max_usage_in_bytes'))),
      usageBytes: num(read(path.join(c.dir, 'memory.usage_in_bytes'))), failcnt: num(read(path.join(c.dir, 'memory.failcnt'))),
      oomKills: oom.oom_kill ?? null, cacheBytes: stat.total_cache ?? stat.cache ?? null, rssBytes: stat.total_rss ?? stat.rss ?? null,
      mappedFileBytes: stat.total_mapped_file ?? stat.mapped_file ?? null, majorFaults: stat.total_pgmajfault ?? stat.pgmajfault ?? null,
      dirtyBytes: stat.total_dirty ?? stat.dirty ?? null, writebackBytes: stat.total_writeback ?? stat.writeback ?? null,
    };
  }
  const ev = parseKv(read(path.join(c.dir, 'memory.events')));
  return {
    limitBytes: c.limitBytes, peakBytes: num(read(path.join(c.dir, 'memory.peak'))), usageBytes: num(read(path.join(c.dir, 'memory.current'))),
    failcnt: ev.max ?? null, oomKills: ev.oom_kill ?? null, cacheBytes: stat.file ?? null, rssBytes: stat.anon ?? null,
    mappedFileBytes: stat.file_mapped ?? null, majorFaults: stat.pgmajfault ?? null,
    dirtyBytes: stat.file_dirty ?? null, writebackBytes: stat.file_writeback ?? null,
  };
}

// Samples the cgroup every `ms` until stop() is called: the highest anonymous, page-cache and
// dirty + writeback bytes seen (the kernel keeps only the peak of their sum).
export function watchCgroup(c, ms = 500) {
  const peak = { anonBytes: 0, cacheBytes: 0, dirtyWritebackBytes: 0, samples: 0 };
  const tick = () => {
    const st = cgroupStats(c);
    peak.samples++;
    peak.anonBytes = Math.max(peak.anonBytes, st.rssBytes || 0);
    peak.cacheBytes = Math.max(peak.cacheBytes, st.cacheBytes || 0);
    peak.dirtyWritebackBytes = Math.max(peak.dirtyWritebackBytes, (st.dirtyBytes || 0) + (st.writebackBytes || 0));
  };
  const iv = setInterval(tick, ms);
  return { stop() { clearInterval(iv); tick(); return peak; } };
}

// Removes the cgroup once its processes are gone (retries for a few seconds).
export function removeCgroup(c) {
  if (!c || !c.dir || !fs.existsSync(c.dir)) return true;
  for (let i = 0; i < 50; i++) {
    try { fs.rmdirSync(c.dir); return true; }
    catch (e) {
      if (e.code === 'ENOENT') return true;
      // v1: move what is charged to the parent first, then retry
      if (c.kind === 'v1' && i === 5) { try { fs.writeFileSync(path.join(c.dir, 'memory.force_empty'), '0'); } catch {} }
      spawnSync('sleep', ['0.1']);
    }
  }
  return false;
}

// sync; echo 3 > /proc/sys/vm/drop_caches. Returns null, or why it failed.
export function dropCaches() {
  spawnSync('sync');
  try { fs.writeFileSync('/proc/sys/vm/drop_caches', '3'); return null; }
  catch (e) { return `cannot drop the page cache (/proc/sys/vm/drop_caches): ${e.message}`; }
}

function read(f) { try { return fs.readFileSync(f, 'utf8'); } catch { return null; } }
function num(t) { if (t === null) return null; const x = Number(t.trim()); return Number.isFinite(x) ? x : null; }
function parseKv(t) {
  const o = {};
  if (!t) return o;
  for (const line of t.split('\n')) { const m = /^(\S+)\s+(\d+)$/.exec(line.trim()); if (m) o[m[1]] = Number(m[2]); }
  return o;
}
