// LanceDB (npm @lancedb/lancedb), an embedded table on disk with a vector index. This module is
// the engine `lancedb-hnsw-sq` (an HNSW_SQ index: one IVF partition holding an HNSW graph over
// scalar-quantized vectors, searched with `ef`); lancedb-ivf-pq.mjs is the same engine over an
// IVF_PQ index (searched with `nprobes` and a refine step over the full vectors), `engineFor(kind)`.
//
// Build: one table made from the vectors (Arrow record batches whose vector column is a
// FixedSizeList<Float32> viewing the Float32Array, no copy) + createIndex, timed together.
// Search: `table.vectorSearch(q).distanceType(..).limit(k).select(['id', '_distance'])` with the
// index's knob, read back with toArrow(). After the sweep, explainPlan() of a real query is
// checked for the ANN index nodes (ANNIvfPartition / ANNSubIndex): a plan without them (a flat
// scan) fails the engine instead of being reported as an index's figures.
import os from 'node:os';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { ivfPqParams } from '../lib/lance-params.mjs';
const require = createRequire(import.meta.url);
const lancedb = require('@lancedb/lancedb');
const arrow = require('apache-arrow'); // the peer lancedb resolves too (one Arrow instance)

const TABLE = 'vectors';
const DISTANCE = { cosine: 'cosine', euclidean: 'l2' };
const BATCH_ROWS = 65536;

function distanceType(metric) {
  const d = DISTANCE[metric];
  if (!d) throw new Error(`lancedb: metric ${metric} not mapped`);
  return d;
}

export function engineFor(kind) {
  const name = `lancedb-${kind}`;
  const ivfPq = kind === 'ivf-pq';
  // its package.json is not among the package's exports: read it beside the resolved entry
  const version = () => JSON.parse(fs.readFileSync(path.join(require.resolve('@lancedb/lancedb').replace(/[/\\]dist[/\\].*$/, ''), 'package.json'), 'utf8')).version;
  // LanceDB's own thread pools size themselves to the machine's cores
  const threadsNominal = () => os.availableParallelism();

  function indexConfig(ctx) {
    const distance = distanceType(ctx.metric);
    if (ivfPq) {
      const p = ivfPqParams(ctx.n, ctx.dim, ctx.lance);
      return { params: { type: 'IVF_PQ', distanceType: distance, numPartitions: p.numPartitions, numSubVectors: p.numSubVectors, numBits: 8, refineFactorAtSearch: p.refineFactor },
        config: lancedb.Index.ivfPq({ distanceType: distance, numPartitions: p.numPartitions, numSubVectors: p.numSubVectors, numBits: 8 }) };
    }
    return { params: { type: 'HNSW_SQ', distanceType: distance, numPartitions: 1, m: ctx.m, efConstruction: ctx.efConstruction },
      config: lancedb.Index.hnswSq({ distanceType: distance, numPartitions: 1, m: ctx.m, efConstruction: ctx.efConstruction }) };
  }

  // The vectors as an Arrow table (id: Int32, vector: FixedSizeList<Float32>[dim]) in record
  // batches of BATCH_ROWS rows, each a view of the Float32Array.
  function arrowTable(vectors, n, dim) {
    const listType = new arrow.FixedSizeList(dim, new arrow.Field('item', new arrow.Float32(), true));
    const schema = new arrow.Schema([new arrow.Field('id', new arrow.Int32(), false), new arrow.Field('vector', listType, false)]);
    const batches = [];
    for (let s = 0; s < n; s += BATCH_ROWS) {
      const c = Math.min(BATCH_ROWS, n - s);
      const ids = new Int32Array(c);
      for (let i = 0; i < c; i++) ids[i] = s + i;
      const child = arrow.makeData({ type: new arrow.Float32(), length: c * dim, nullCount: 0, data: vectors.subarray(s * dim, (s + c) * dim) });
      const vec = arrow.makeData({ type: listType, length: c, nullCount: 0, child });
      const id = arrow.makeData({ type: new arrow.Int32(), length: c, nullCount: 0, data: ids });
      batches.push(new arrow.RecordBatch(schema, arrow.makeData({ type: new arrow.Struct(schema.fields), length: c, nullCount: 0, children: [id, vec] })));
    }
    return new arrow.Table(batches);
  }

  async function build(ctx) {
    const { n, dim } = ctx;
    const { params, config } = indexConfig(ctx);
    fs.mkdirSync(ctx.indexPath, { recursive: true });
    const t0 = performance.now();
    const db = await lancedb.connect(ctx.indexPath);
    const table = await db.createTable(TABLE, arrowTable(ctx.vectors, n, dim), { mode: 'overwrite' });
    const t1 = performance.now();
    await table.createIndex('vector', { config, replace: true });
    const t2 = performance.now();
    const indices = await table.listIndices();
    const rows = await table.countRows();
    table.close(); db.close();
    const idx = indices.find((x) => x.columns.includes('vector'));
    if (!idx) throw new Error(`${name}: createIndex left no index on the vector column`);
    if (rows !== n || idx.numIndexedRows !== n || idx.numUnindexedRows !== 0) throw new Error(`${name}: ${rows} rows, ${idx.numIndexedRows} indexed, ${idx.numUnindexedRows} not indexed (expected ${n} / ${n} / 0)`);
    return {
      createTableSeconds: (t1 - t0) / 1000, indexSeconds: (t2 - t1) / 1000,
      index: { ...params, lanceIndexType: idx.indexType, sizeBytes: idx.sizeBytes ?? null, numIndexedRows: idx.numIndexedRows },
    };
  }

  async function open(ctx) {
    const db = await lancedb.connect(ctx.indexPath);
    const table = await db.openTable(TABLE);
    return { db, table, ctx, distance: distanceType(ctx.metric), refineFactor: ivfPq ? ivfPqParams(0, ctx.dim, ctx.lance).refineFactor : null, last: null, plan: null };
  }

  function query(h, q, k, v) {
    const x = h.table.vectorSearch(q).distanceType(h.distance).limit(k).select(['id', '_distance']);
    return ivfPq ? x.nprobes(v).refineFactor(h.refineFactor) : x.ef(v);
  }

  async function close(h) {
    // One explainPlan of the last query made (its knob value included): the search must go
    // through the vector index, not a flat scan of the table.
    if (h.last) {
      const [q, k, v] = h.last;
      h.plan = await query(h, q, k, v).explainPlan(true);
      const usesIndex = /ANNIvfPartition/.test(h.plan) && /ANNSubIndex/.test(h.plan);
      h.planCheck = { usesIndex, query: { k, [ivfPq ? 'nprobes' : 'ef']: v } };
      if (!usesIndex) throw new Error(`${name}: the query plan does not use the vector index (a flat scan?):\n${h.plan}`);
    }
    h.table.close(); h.db.close();
  }

  // What the search result records besides the figures: the plan checked at close.
  const searchInfo = (h) => ({ queryPlan: h.plan, queryPlanCheck: h.planCheck ?? null, refineFactor: h.refineFactor });

  function modes(h, ctx) {
    const knob = ivfPq ? 'nprobes' : 'ef';
    const values = ivfPq ? ctx.nprobes : ctx.efs;
    const search = async (q, k, v) => {
      h.last = [q, k, v];
      return (await query(h, q, k, v).toArrow()).getChild('id').toArray();
    };
    const inflight = ctx.inflight ?? 16;
    const how = ivfPq ? `.nprobes(n).refineFactor(${h.refineFactor})` : '.ef(ef)';
    const common = { knob, knobValues: values, firstKnobValue: ivfPq ? (values.includes(20) ? 20 : values[Math.floor(values.length / 2)]) : undefined };
    return [
      { name: 'single', kind: 'async', label: `${name} (1 awaited)`, threads: os.availableParallelism(), ...common,
        description: `await table.vectorSearch(q)${how}.limit(k).toArrow(), one query at a time (LanceDB may use several threads inside one query)`, search },
      { name: `inflight${inflight}`, kind: 'inflight', concurrency: inflight, label: `${name} (${inflight} in flight)`, threads: os.availableParallelism(), ...common,
        description: `${inflight} concurrent vectorSearch promises`, search },
    ];
  }

  return { name, version, threadsNominal, build, open, close, modes, searchInfo };
}

export const { version, threadsNominal, build, open, close, modes, searchInfo } = engineFor('hnsw-sq');
