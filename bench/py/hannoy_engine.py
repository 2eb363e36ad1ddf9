"""hannoy (Rust, PyPI wheel) as a benchmark engine, one phase per process (run in bench/.venv).

  python hannoy_engine.py --config cfg.json      (cfg.phase = 'build' | 'search' | 'idle')

Writes the same result JSON as bench/engines/driver.mjs does for the Node engines.
"""
import json, os, sys, time


def status():
    out = {}
    try:
        with open('/proc/self/status') as f:
            for line in f:
                k, _, v = line.partition(':')
                if k in ('VmRSS', 'VmHWM', 'RssAnon', 'RssFile', 'Threads'):
                    n = int(v.split()[0])
                    out[k] = n if k == 'Threads' else n * 1024
    except OSError:
        pass
    return {'vmRSS': out.get('VmRSS'), 'vmHWM': out.get('VmHWM'), 'rssAnon': out.get('RssAnon'),
            'rssFile': out.get('RssFile'), 'threads': out.get('Threads')}


def write_result(cfg, obj):
    tmp = cfg['resultFile'] + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(obj, f, indent=1)
    os.replace(tmp, cfg['resultFile'])


def write_search_result(cfg, *, ver, nq, k, import_ms, open_ms, first_ms, first_ef, since_start_at_first,
                        mem_open, peak_anon, modes):
    """A search process's result file, the same fields for every Python engine (run.mjs reads them)."""
    write_result(cfg, {
        'engine': cfg['engine'], 'version': ver, 'nq': nq, 'k': k,
        'importMs': r(import_ms, 2), 'openMs': r(open_ms), 'openFirstQueryMs': r(first_ms), 'firstQueryEf': first_ef,
        'processStartToFirstQueryMs': r(since_start_at_first * 1000, 1) if since_start_at_first is not None else None,
        'memoryAfterOpen': mem_open, 'memoryAtEnd': status(), 'peakRssAnonSampled': peak_anon,
        'modes': modes,
    })


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def dir_bytes(p):
    """(on-disk bytes, apparent bytes, allocated bytes); on-disk is per file min(apparent, allocated)."""
    if not os.path.isdir(p):
        st = os.stat(p)
        return min(st.st_size, st.st_blocks * 512), st.st_size, st.st_blocks * 512
    a = b = c = 0
    for e in os.listdir(p):
        x, y, z = dir_bytes(os.path.join(p, e))
        a += x; b += y; c += z
    return a, b, c


def seconds_since_process_start():
    # /proc/self/stat field 22: start time in clock ticks after boot (10 ms resolution)
    try:
        with open('/proc/self/stat') as f:
            start = int(f.read().rsplit(')', 1)[1].split()[19]) / os.sysconf('SC_CLK_TCK')
        with open('/proc/uptime') as f:
            return float(f.read().split()[0]) - start
    except (OSError, ValueError, IndexError):
        return None


def r(x, d=3):
    return None if x is None else round(x, d)


def main():
    t_process = time.perf_counter()
    cfg = json.load(open(sys.argv[sys.argv.index('--config') + 1]))
    try:
        if cfg['phase'] == 'idle':
            import numpy  # noqa: F401  (what the engine process also loads)
            time.sleep(0.3)
            write_result(cfg, {'engine': 'idle-python', 'memory': status()})
            return
        import numpy as np
        t_imp = time.perf_counter()
        import hannoy
        import_ms = (time.perf_counter() - t_imp) * 1000
        from importlib.metadata import version
        ver = version('hannoy')
        metrics = {'cosine': hannoy.Metric.COSINE, 'euclidean': hannoy.Metric.EUCLIDEAN,
                   'manhattan': hannoy.Metric.MANHATTAN}
        if cfg['metric'] not in metrics:
            raise ValueError(f"hannoy (PyPI) has no metric {cfg['metric']}")
        metric = metrics[cfg['metric']]
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from prepare import read_matrix
        if cfg['phase'] == 'build':
            build(cfg, np, hannoy, metric, ver, read_matrix)
        else:
            search(cfg, np, hannoy, metric, ver, read_matrix, import_ms, t_process)
    except Exception as e:  # reported as failed, never a silent stop
        import traceback
        traceback.print_exc()
        write_result(cfg, {'engine': cfg.get('engine'), 'phase': cfg.get('phase'), 'error': f'{type(e).__name__}: {e}'})
        sys.exit(1)


def build(cfg, np, hannoy, metric, ver, read_matrix):
    base = np.ascontiguousarray(read_matrix(cfg['baseFile'], cfg.get('n')), dtype=np.float32)
    n, dim = base.shape
    os.makedirs(cfg['indexPath'], exist_ok=True)
    mem_before = status()
    c0, t0 = time.process_time(), time.perf_counter()
    db = hannoy.Database(cfg['indexPath'], metric, env_size=cfg.get('mapSize') or None)
    with db.writer(dim, index=0, m=cfg['m'], ef=cfg['efConstruction']) as w:
        w.add_items(list(range(n)), base)
        t_add = time.perf_counter() - t0
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    mem_after = status()
    del db
    disk, apparent, alloc = dir_bytes(cfg['indexPath'])
    write_result(cfg, {
        'engine': cfg['engine'], 'version': ver, 'n': n, 'dim': dim,
        'buildSeconds': r(wall), 'buildCpuSeconds': r(cpu), 'cpuParallelism': r(cpu / wall, 2),
        'threadsNominal': int(os.environ.get('RAYON_NUM_THREADS') or os.cpu_count()),
        'addSeconds': r(t_add), 'diskBytes': disk, 'diskApparentBytes': apparent, 'diskAllocatedBytes': alloc,
        'diskBytesPerVector': r(disk / n, 2), 'rawVectorBytesPerVector': dim * 4,
        'memoryBeforeBuild': mem_before, 'memoryAfterBuild': mem_after,
    })


def search(cfg, np, hannoy, metric, ver, read_matrix, import_ms, t_process):
    q = np.ascontiguousarray(read_matrix(cfg['queriesFile'], cfg.get('nq')), dtype=np.float32)
    nq, dim = q.shape
    k = cfg['k']
    gt = read_matrix(cfg['gtFile'], nq, dtype='<u4') if cfg.get('gtFile') else None
    efs = cfg['efs']
    first_ef = 80 if 80 in efs else efs[0]
    t0 = time.perf_counter()
    db = hannoy.Database(cfg['indexPath'], metric)
    reader = db.reader(0)
    open_ms = (time.perf_counter() - t0) * 1000
    reader.by_array(q[0], n=k, ef_search=first_ef)
    t_first = time.perf_counter()
    since_start_at_first = seconds_since_process_start()
    first_ms = (t_first - t0) * 1000
    mem_open = status()
    peak_anon = mem_open['rssAnon']
    min_s = cfg.get('minTimeSeconds', 1)
    deadline = cfg.get('deadline')

    def recall(ids):
        if gt is None:
            return None
        hit = 0
        for i in range(nq):
            hit += len(set(int(x) for x in ids[i][:k]) & set(int(x) for x in gt[i, :k]))
        return round(hit / (nq * k), 4)

    modes = []
    # single: one query at a time, in a Python loop, single-threaded
    points = []
    for ef in efs:
        if deadline and time.time() * 1000 > deadline:
            log(f'hannoy-py: out of time, skipping ef {ef}')
            break
        found = [[h[0] for h in reader.by_array(q[i], n=k, ef_search=ef)] for i in range(nq)]
        rec = recall(found)
        lat = []
        done = passes = 0
        best = float('inf')
        ts = time.perf_counter()
        while True:
            tp = time.perf_counter()
            for i in range(nq):
                t = time.perf_counter_ns()
                reader.by_array(q[i], n=k, ef_search=ef)
                lat.append((time.perf_counter_ns() - t) / 1e6)
            best = min(best, time.perf_counter() - tp)
            done += nq
            passes += 1
            if time.perf_counter() - ts >= min_s and passes >= cfg.get('minPasses', 2):
                break
            if deadline and time.time() * 1000 > deadline:
                break
        el = time.perf_counter() - ts
        lat.sort()
        pct = lambda p: lat[min(len(lat) - 1, max(0, -(-p * len(lat) // 100) - 1))]
        points.append({'ef': ef, 'recall': rec, 'qps': round(nq / best, 1), 'qpsMean': round(done / el, 1), 'passes': passes, 'queries': done, 'seconds': r(el),
                       'p50Ms': r(pct(50), 4), 'p99Ms': r(pct(99), 4), 'meanMs': r(sum(lat) / len(lat), 4)})
        peak_anon = max(peak_anon, status()['rssAnon'] or 0)
        log(f"hannoy-py/single ef={ef}: recall@{k}={rec} qps={points[-1]['qps']} p50={points[-1]['p50Ms']}ms p99={points[-1]['p99Ms']}ms")
    modes.append({'mode': 'single', 'label': 'hannoy-py', 'threads': 1,
                  'description': 'reader.by_array(q), one query at a time in a Python loop', 'points': points})
    write_search_result(cfg, ver=ver, nq=nq, k=k, import_ms=import_ms, open_ms=open_ms, first_ms=first_ms,
                        first_ef=first_ef, since_start_at_first=since_start_at_first, mem_open=mem_open,
                        peak_anon=peak_anon, modes=modes)


if __name__ == '__main__':
    main()
