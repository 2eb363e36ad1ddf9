// The IVF_PQ parameters of the lancedb-ivf-pq engine (no dependencies: run.mjs names the index
// directory after them, the engine builds with them).
//   numPartitions: given, or round(sqrt(n)) (LanceDB's own default);
//   numSubVectors: given, or dim / 8 (8 dimensions per 8-bit code) or, when 8 does not divide
//     dim, the smallest divisor of dim at least dim / 8 (GloVe's 50: 10 sub-vectors of 5);
//   refineFactor: given, or 10 (the search rescores k × 10 candidates with the full vectors).
export function ivfPqParams(n, dim, given = {}) {
  let sub = given.numSubVectors;
  if (!sub) {
    if (dim % 8 === 0) sub = dim / 8;
    else for (sub = Math.ceil(dim / 8); dim % sub !== 0; sub++);
  }
  if (dim % sub !== 0) throw new Error(`lancedb-ivf-pq: numSubVectors ${sub} does not divide the ${dim} dimensions`);
  return { numPartitions: given.numPartitions || Math.max(1, Math.round(Math.sqrt(n))), numSubVectors: sub, refineFactor: given.refineFactor || 10 };
}
