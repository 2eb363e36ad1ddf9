"""hnswlib (the C++ library through its own PyPI binding) as a benchmark engine, one phase per
process (run in bench/.venv).

  python hnswlib_engine.py --config cfg.json      (cfg.phase = 'build' | 'search')

Writes the same result JSON as bench/engines/driver.mjs does for the Node engines (and
hannoy_engine.py, whose /proc and file helpers it uses).

build:  Index(space, dim).init_index(max_elements=n, ef_construction, M), then one
        add_items(all vectors, ids, num_threads=os.cpu_count()); saved with save_index, which is
        timed apart (saveSeconds) and not part of the build time.
search: load_index, then two modes, single-threaded both:
        batch  -- set_num_threads(1) and one knn_query(all queries, k) call per pass: the engine's
                  per-core speed without a per-call cost;
        single -- one knn_query(q, k) per query in a Python loop: what a caller pays per call.
"""
import json, os, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hannoy_engine import status, write_result, write_search_result, log, dir_bytes, seconds_since_process_start, r  # noqa: E402

SPACES = {'cosine': 'cosine', 'euclidean': 'l2', 'ip': 'ip'}


def main():
    cfg = json.load(open(sys.argv[sys.argv.index('--config') + 1]))
    try:
        import numpy as np
        t_imp = time.perf_counter()
        import hnswlib
        import_ms = (time.perf_counter() - t_imp) * 1000
        from importlib.metadata import version
        ver = version('hnswlib')
        if cfg['metric'] not in SPACES:
            raise ValueError(f"hnswlib has no metric {cfg['metric']}")
        from prepare import read_matrix
        if cfg['phase'] == 'build':
            build(cfg, np, hnswlib, ver, read_matrix)
        elif cfg['phase'] == 'search':
            search(cfg, np, hnswlib, ver, read_matrix, import_ms)
        else:
            raise ValueError(f"unknown phase {cfg['phase']}")
    except Exception as e:  # reported as failed, never a silent stop
        import traceback
        traceback.print_exc()
        write_result(cfg, {'engine': cfg.get('engine'), 'phase': cfg.get('phase'), 'error': f'{type(e).__name__}: {e}'})
        sys.exit(1)


def build(cfg, np, hnswlib, ver, read_matrix):
    base = np.ascontiguousarray(read_matrix(cfg['baseFile'], cfg.get('n')), dtype=np.float32)
    n, dim = base.shape
    ids = np.arange(n, dtype=np.int64)
    threads = os.cpu_count() or 1
    mem_before = status()
    c0, t0 = time.process_time(), time.perf_counter()
    index = hnswlib.Index(space=SPACES[cfg['metric']], dim=dim)
    index.init_index(max_elements=n, ef_construction=cfg['efConstruction'], M=cfg['m'])
    index.add_items(base, ids, num_threads=threads)
    insert = time.perf_counter() - t0
    cpu = time.process_time() - c0
    mem_after = status()
    t1 = time.perf_counter()
    index.save_index(cfg['indexPath'])
    save = time.perf_counter() - t1
    disk, apparent, alloc = dir_bytes(cfg['indexPath'])
    write_result(cfg, {
        'engine': cfg['engine'], 'version': ver, 'n': n, 'dim': dim,
        # the harness takes insertSeconds as the build time and keeps this one as buildAndSaveSeconds
        'buildSeconds': r(insert + save), 'insertSeconds': r(insert), 'saveSeconds': r(save),
        'buildCpuSeconds': r(cpu), 'cpuParallelism': r(cpu / insert, 2), 'threadsNominal': threads,
        'diskBytes': disk, 'diskApparentBytes': apparent, 'diskAllocatedBytes': alloc,
        'diskBytesPerVector': r(disk / n, 2), 'rawVectorBytesPerVector': dim * 4,
        'memoryBeforeBuild': mem_before, 'memoryAfterBuild': mem_after,
    })


def search(cfg, np, hnswlib, ver, read_matrix, import_ms):
    q = np.ascontiguousarray(read_matrix(cfg['queriesFile'], cfg.get('nq')), dtype=np.float32)
    nq, dim = q.shape
    k = cfg['k']
    gt = read_matrix(cfg['gtFile'], nq, dtype='<u4') if cfg.get('gtFile') else None
    efs = cfg['efs']
    first_ef = 80 if 80 in efs else efs[0]
    min_s = cfg.get('minTimeSeconds', 1)
    min_passes = cfg.get('minPasses', 2)
    deadline = cfg.get('deadline')
    out_of_time = lambda: deadline and time.time() * 1000 > deadline

    t0 = time.perf_counter()
    index = hnswlib.Index(space=SPACES[cfg['metric']], dim=dim)
    index.load_index(cfg['indexPath'])
    index.set_num_threads(1)  # every knn_query below runs on the calling thread
    open_ms = (time.perf_counter() - t0) * 1000
    index.set_ef(first_ef)
    index.knn_query(q[0], k=k, num_threads=1)
    t_first = time.perf_counter()
    since_start_at_first = seconds_since_process_start()
    first_ms = (t_first - t0) * 1000
    mem_open = status()
    peak_anon = mem_open['rssAnon'] or 0

    def recall(labels):
        if gt is None:
            return None
        hit = 0
        for i in range(nq):
            hit += len(set(int(x) for x in labels[i][:k]) & set(int(x) for x in gt[i, :k]))
        return round(hit / (nq * k), 4)

    def pct(lat, p):
        return lat[min(len(lat) - 1, max(0, -(-p * len(lat) // 100) - 1))]

    def batch_pass():
        return index.knn_query(q, k=k, num_threads=1)[0]

    def single_pass(lat=None):
        labels = np.empty((nq, k), dtype=np.uint64)
        for i in range(nq):
            t = time.perf_counter_ns()
            labels[i] = index.knn_query(q[i], k=k, num_threads=1)[0][0]
            if lat is not None:
                lat.append((time.perf_counter_ns() - t) / 1e6)
        return labels

    modes = []
    for mode, label, desc in (
        ('batch', 'hnswlib-py (1-thread batch)', 'set_num_threads(1), one knn_query(allQueries, k) call'),
        ('single', 'hnswlib-py (1 per call)', 'knn_query(q, k), one query at a time in a Python loop, one thread'),
    ):
        points = []
        for ef in efs:
            if out_of_time():
                log(f'hnswlib-py/{mode}: out of time, skipping ef {ef}')
                break
            index.set_ef(ef)
            rec = recall(batch_pass() if mode == 'batch' else single_pass())  # warm-up pass
            lat, calls = [], []
            done = passes = 0
            best = float('inf')
            ts, cs = time.perf_counter(), time.process_time()
            while True:
                tp = time.perf_counter()
                if mode == 'batch':
                    batch_pass()
                    calls.append((time.perf_counter() - tp) * 1000)
                else:
                    single_pass(lat)
                best = min(best, time.perf_counter() - tp)
                done += nq
                passes += 1
                if time.perf_counter() - ts >= min_s and passes >= min_passes:
                    break
                if out_of_time():
                    break
            el = time.perf_counter() - ts
            pt = {'ef': ef, 'recall': rec, 'qps': round(nq / best, 1), 'qpsMean': round(done / el, 1), 'passes': passes,
                  'queries': done, 'seconds': r(el), 'cpuParallelism': r((time.process_time() - cs) / el, 2)}
            if mode == 'batch':
                calls.sort()
                pt.update({'p50Ms': None, 'p99Ms': None, 'batchCallMs': r(pct(calls, 50), 4), 'batchCalls': len(calls)})
            else:
                lat.sort()
                pt.update({'p50Ms': r(pct(lat, 50), 4), 'p99Ms': r(pct(lat, 99), 4), 'meanMs': r(sum(lat) / len(lat), 4)})
            points.append(pt)
            peak_anon = max(peak_anon, status()['rssAnon'] or 0)
            log(f"hnswlib-py/{mode} ef={ef}: recall@{k}={rec} qps={pt['qps']} p50={pt['p50Ms']}ms p99={pt['p99Ms']}ms")
        modes.append({'mode': mode, 'label': label, 'threads': 1, 'description': desc, 'points': points})
    write_search_result(cfg, ver=ver, nq=nq, k=k, import_ms=import_ms, open_ms=open_ms, first_ms=first_ms,
                        first_ef=first_ef, since_start_at_first=since_start_at_first, mem_open=mem_open,
                        peak_anon=peak_anon, modes=modes)


if __name__ == '__main__':
    main()
