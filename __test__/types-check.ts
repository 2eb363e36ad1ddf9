// Type test: the whole public API used with the types of the contract. Never run; checked by
// `tsc --noEmit` under strict (tsconfig.json includes __test__/**/*.ts; types.spec.ts runs it too).
import { Database, Reader, Writer } from '../index.js'

type Metric = 'euclidean' | 'cosine' | 'manhattan' | 'hamming' | 'bq-euclidean' | 'bq-cosine' | 'bq-manhattan'
type Quantization = 'none' | 'int8' | 'binary'
type SearchResult = { id: number; distance: number }

type IsAny<T> = 0 extends 1 & T ? true : false
type NotAny<T> = IsAny<T> extends true ? false : true
function assertTrue<T extends true>(): T | undefined {
  return undefined
}

export async function usage(dir: string, signal: AbortSignal): Promise<void> {
  // Database
  const db: Database = await Database.open(dir)
  const ro: Database = await Database.open(dir, { readOnly: true })
  const sized: Database = await Database.open(dir, { mapSize: 1 << 30 })
  await Database.open(dir, {})
  await Database.open(dir, { mapSize: 1 << 20, readOnly: false })

  // Writer
  const w: Writer = db.writer(0, { dimensions: 3 })
  const w2: Writer = db.writer(65535, { dimensions: 64, metric: 'hamming' })
  const metrics: Metric[] = ['euclidean', 'cosine', 'manhattan', 'hamming', 'bq-euclidean', 'bq-cosine', 'bq-manhattan']
  for (const metric of metrics) db.writer(1, { dimensions: 8, metric })
  const index: number = w.index
  const dimensions: number = w.dimensions
  const metric: Metric = w.metric
  const addItems: Promise<void> = w.addItems(new Uint32Array([1, 2]), new Float32Array(6))
  await addItems
  await w.addItems([1, 2], new Float32Array(6))
  const addItem: Promise<void> = w.addItem(3, new Float32Array(3))
  await addItem
  await w.addItem(4, [1, 2, 3])
  const existed: number = await w.deleteItems([1, 2])
  const existed2: number = await w.deleteItems(new Uint32Array([3]))
  const built = await w.build({
    m: 16,
    m0: 32,
    efConstruction: 100,
    seed: 42,
    signal,
    onProgress: (p) => {
      const phase: string = p.phase
      const done: number = p.done
      const total: number = p.total
      void [phase, done, total]
    },
  })
  const inserted: number = built.inserted
  const deleted: number = built.deleted
  const items: number = built.items
  const seconds: number = built.seconds
  await w.build()
  await w.build({})
  await w.build({ signal: AbortSignal.timeout(1000) })
  const cleared: Promise<void> = w.clear()
  await cleared

  // Reader
  const r: Reader = await db.reader()
  const r1: Reader = await db.reader(1)
  const rIndex: number = r.index
  const rDims: number = r.dimensions
  const rMetric: Metric = r.metric
  const hits = await r.search(new Float32Array(3), { k: 10, ef: 64, filter: new Uint32Array([1, 2]), signal })
  await r.search([1, 2, 3])
  await r.search([1, 2, 3], { filter: [1, 2] })
  for (const h of hits) {
    const id: number = h.id
    const distance: number = h.distance
    void [id, distance]
  }
  const batch = await r.searchBatch(new Float32Array(6), { k: 5, ef: 10, filter: [1] })
  await r.searchBatch(new Float32Array(6))
  await r.searchBatch(new Float32Array(6), { filter: new Uint32Array([1]) })
  const k: number = batch.k
  const ids: Uint32Array = batch.ids
  const distances: Float32Array = batch.distances
  const byId: Array<{ id: number; distance: number }> = await r1.searchById(1, { k: 3, ef: 10, filter: new Uint32Array([1]) })
  await r1.searchById(1)
  const vector: Float32Array | null = await r.getVector(1)
  if (vector !== null) {
    const first: number = vector[0]
    void first
  }
  const count: number = await r.count()

  const list = await db.indexes()
  for (const info of list) {
    const i: number = info.index
    const d: number = info.dimensions
    const m: Metric = info.metric
    const n: number = info.items
    void [i, d, m, n]
  }
  const closed: Promise<void> = db.close()
  await closed

  // quantized indexes, verify, copy, await using
  {
    await using qdb = await Database.open('./q', { verify: true })
    const qw = qdb.writer(1, { dimensions: 4, metric: 'cosine', quantization: 'binary' })
    const q: Quantization = qw.quantization
    await qw.build({ retrain: true })
    const qr = await qdb.reader(1)
    const hits: SearchResult[] = await qr.search([1, 0, 0, 0], { oversampling: 4, rescore: false })
    const qq: Quantization = qr.quantization
    const report = await qdb.verify()
    const sizes: number[] = [report.fileBytes, report.pages, report.pageSize, report.freePages, report.seconds]
    for (const index of report.indexes) void [index.index, index.vectors, index.nodes]
    const copied: Promise<void> = qdb.copy('./q2', { compact: true })
    await copied
    for (const info of await qdb.indexes()) {
      const iq: Quantization = info.quantization
      void iq
    }
    void [q, hits, qq, sizes]
  }

  // nothing is `any`
  assertTrue<NotAny<typeof hits>>()
  assertTrue<NotAny<(typeof hits)[number]['distance']>>()
  assertTrue<NotAny<typeof batch>>()
  assertTrue<NotAny<typeof batch.ids>>()
  assertTrue<NotAny<typeof built>>()
  assertTrue<NotAny<typeof list>>()
  assertTrue<NotAny<typeof vector>>()
  assertTrue<NotAny<typeof w.metric>>()
  assertTrue<NotAny<Awaited<ReturnType<typeof Database.open>>>>()
  assertTrue<NotAny<ReturnType<Database['writer']>>>()
  assertTrue<NotAny<Awaited<ReturnType<Database['reader']>>>>()
  assertTrue<NotAny<Parameters<Writer['build']>[0]>>()
  assertTrue<NotAny<Parameters<Reader['search']>[0]>>()
  assertTrue<NotAny<Parameters<Reader['search']>[1]>>()

  // misuse does not compile
  // @ts-expect-error options (dimensions) are required
  db.writer(0)
  // @ts-expect-error an unknown metric
  db.writer(0, { dimensions: 3, metric: 'dot' })
  // @ts-expect-error dimensions must be a number
  db.writer(0, { dimensions: '3' })
  // @ts-expect-error a query is not a string
  await r.search('abc')
  // @ts-expect-error ids are numbers
  await w.addItems(['a'], new Float32Array(3))
  // @ts-expect-error vectors of a batch are a Float32Array
  await w.addItems([1], 'abc')
  // @ts-expect-error the filter holds ids
  await r.search([1, 2, 3], { filter: ['a'] })
  // @ts-expect-error getVector resolves to Float32Array | null, not number[]
  const wrong: number[] = (await r.getVector(1))!
  // @ts-expect-error the writer's index is read-only
  w.index = 5
  // @ts-expect-error the reader's metric is read-only
  r.metric = 'cosine'

  void [ro, sized, w2, index, dimensions, metric, existed, existed2, inserted, deleted, items, seconds]
  void [rIndex, rDims, rMetric, k, ids, distances, byId, count, wrong]
}
