// LanceDB over an IVF_PQ index: numPartitions ≈ sqrt(n) IVF partitions, the vectors
// product-quantized (numSubVectors codes of 8 bits), searched with `nprobes` partitions and a
// refine step that rescores limit × refineFactor candidates with the full vectors.
import { engineFor } from './lancedb-hnsw-sq.mjs';
export const { version, threadsNominal, build, open, close, modes, searchInfo } = engineFor('ivf-pq');
