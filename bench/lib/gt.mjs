// Exact top-k ground truth in plain JavaScript: the fallback when Python/numpy is missing.
import { readMatrix, writeMatrix } from './common.mjs';

export function groundTruthJs({ baseFile, n, queriesFile, metric, k, out }) {
  const b = readMatrix(baseFile, { count: n });
  const q = readMatrix(queriesFile);
  const dim = b.cols, N = b.rows, nq = q.rows;
  const norm = (v, off) => { let s = 0; for (let j = 0; j < dim; j++) s += v[off + j] * v[off + j]; return Math.sqrt(s) || 1e-30; };
  const bn = new Float64Array(N);
  for (let i = 0; i < N; i++) bn[i] = norm(b.data, i * dim);
  const ids = new Uint32Array(nq * k), dist = new Float32Array(nq * k);
  for (let qi = 0; qi < nq; qi++) {
    const qo = qi * dim, qn = norm(q.data, qo);
    const topD = new Float64Array(k).fill(Infinity), topI = new Uint32Array(k);
    for (let i = 0; i < N; i++) {
      const bo = i * dim;
      let d = 0;
      if (metric === 'cosine') { let dot = 0; for (let j = 0; j < dim; j++) dot += q.data[qo + j] * b.data[bo + j]; d = 1 - dot / (qn * bn[i]); }
      else if (metric === 'euclidean') { for (let j = 0; j < dim; j++) { const t = q.data[qo + j] - b.data[bo + j]; d += t * t; } d = Math.sqrt(d); }
      else if (metric === 'manhattan') { for (let j = 0; j < dim; j++) d += Math.abs(q.data[qo + j] - b.data[bo + j]); }
      else if (metric === 'ip') { for (let j = 0; j < dim; j++) d -= q.data[qo + j] * b.data[bo + j]; }
      else throw new Error(`ground truth: metric ${metric} not supported`);
      if (d < topD[k - 1]) {
        let p = k - 1;
        while (p > 0 && topD[p - 1] > d) { topD[p] = topD[p - 1]; topI[p] = topI[p - 1]; p--; }
        topD[p] = d; topI[p] = i;
      }
    }
    ids.set(topI, qi * k); for (let j = 0; j < k; j++) dist[qi * k + j] = topD[j];
  }
  writeMatrix(out, nq, k, ids);
  writeMatrix(out + '.dist', nq, k, dist);
}
