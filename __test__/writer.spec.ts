// Writer: addItems / addItem / deleteItems / build / clear, stored vectors, build results, ordering.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Database } from '../index.js'
import {
  BQ_METRICS,
  FLOAT_METRICS,
  Scratch,
  bruteForce,
  clusteredVectors,
  expectCode,
  expectValidHits,
  fillAndBuild,
  randomVectors,
  range,
  recall,
  row,
} from './helpers'

const scratch = new Scratch()
let db: Database

beforeAll(async () => {
  db = scratch.track(await Database.open(scratch.dir()))
})
afterAll(() => scratch.cleanup())

describe('writer properties', () => {
  it('exposes index, dimensions and metric; metric defaults to cosine', () => {
    const w = db.writer(1, { dimensions: 5 })
    expect(w.index).toBe(1)
    expect(w.dimensions).toBe(5)
    expect(w.metric).toBe('cosine')
    const w2 = db.writer(2, { dimensions: 3, metric: 'manhattan' })
    expect(w2.index).toBe(2)
    expect(w2.dimensions).toBe(3)
    expect(w2.metric).toBe('manhattan')
  })

  it('the default metric is stored as cosine on the first write', async () => {
    const w = db.writer(3, { dimensions: 2 })
    await w.addItem(1, [1, 2])
    const info = (await db.indexes()).find((x) => x.index === 3)
    expect(info).toEqual({ index: 3, dimensions: 2, metric: 'cosine', quantization: 'none', items: 1 })
  })

  it('index 0 and index 65535 are both valid', async () => {
    const a = db.writer(0, { dimensions: 2, metric: 'euclidean' })
    const b = db.writer(65535, { dimensions: 2, metric: 'euclidean' })
    await a.addItem(1, [0, 1])
    await b.addItem(1, [1, 0])
    await a.build()
    await b.build()
    expect(Array.from((await (await db.reader(65535)).getVector(1))!)).toEqual([1, 0])
    expect(Array.from((await (await db.reader(0)).getVector(1))!)).toEqual([0, 1])
  })
})

describe('stored vectors (getVector)', () => {
  FLOAT_METRICS.forEach((metric, i) => {
    it(`${metric}: returned bit-exact as given (Float32Array), rounded to f32 for number[]`, async () => {
      const d = 7
      const data = randomVectors(20, d, 10 + i)
      const w = db.writer(100 + i, { dimensions: d, metric })
      await w.addItems(range(0, 20), data)
      await w.addItem(20, [0.1, -0.2, 0.3, 1e-7, 12345.678, -1, 0.5])
      await w.build()
      const r = await db.reader(100 + i)
      for (let id = 0; id < 20; id++) {
        const v = await r.getVector(id)
        expect(v).toBeInstanceOf(Float32Array)
        expect(Array.from(v!)).toEqual(Array.from(row(data, id, d)))
      }
      const v20 = await r.getVector(20)
      expect(Array.from(v20!)).toEqual([0.1, -0.2, 0.3, 1e-7, 12345.678, -1, 0.5].map(Math.fround))
    })
  })

  it('hamming stores bits: any non-zero component reads back as 1', async () => {
    const w = db.writer(110, { dimensions: 16, metric: 'hamming' })
    const v = [0, 1, 2.5, -3, 0, 0, 1, 1, -0.5, 0, 0, 0, 7, 0, 1, 0]
    await w.addItem(1, v)
    await w.addItem(2, new Float32Array(16))
    await w.build()
    const r = await db.reader(110)
    expect(Array.from((await r.getVector(1))!)).toEqual(v.map((x) => (x !== 0 ? 1 : 0)))
    expect(Array.from((await r.getVector(2))!)).toEqual(new Array(16).fill(0))
    const hits = await r.search(v, { k: 2 })
    expect(hits.map((h) => h.id)).toEqual([1, 2])
    expect(hits.map((h) => h.distance)).toEqual([0, 8])
  })

  BQ_METRICS.forEach((metric, i) => {
    it(`${metric} stores the sign of each component: reads back as +1 / -1`, async () => {
      const d = 16
      const data = randomVectors(10, d, 20 + i)
      const w = db.writer(120 + i, { dimensions: d, metric })
      await w.addItems(range(0, 10), data)
      await w.build()
      const r = await db.reader(120 + i)
      for (let id = 0; id < 10; id++) {
        const v = await r.getVector(id)
        expect(v!.length).toBe(d)
        expect(Array.from(v!)).toEqual(Array.from(row(data, id, d)).map((x) => (x > 0 ? 1 : -1)))
      }
    })
  })

  it('reads a Float32Array view at an offset (subarray) correctly', async () => {
    const d = 4
    const big = randomVectors(50, d, 30)
    const ids = range(1000, 50)
    const w = db.writer(130, { dimensions: d, metric: 'euclidean' })
    await w.addItems(ids.subarray(10, 20), big.subarray(10 * d, 20 * d))
    await w.addItem(2000, big.subarray(30 * d, 31 * d))
    await w.build()
    const r = await db.reader(130)
    expect(await r.count()).toBe(11)
    for (let i = 10; i < 20; i++) {
      expect(Array.from((await r.getVector(1000 + i))!)).toEqual(Array.from(row(big, i, d)))
    }
    expect(Array.from((await r.getVector(2000))!)).toEqual(Array.from(row(big, 30, d)))
    expect(await r.getVector(1000)).toBeNull()
  })

  it('ids are 0 … 4294967295: both ends work, number[] ids too', async () => {
    const w = db.writer(131, { dimensions: 2, metric: 'euclidean' })
    await w.addItems([0, 4294967295, 2147483648], new Float32Array([1, 1, 2, 2, 4, 4]))
    await w.build()
    const r = await db.reader(131)
    expect(Array.from((await r.getVector(4294967295))!)).toEqual([2, 2])
    expect(Array.from((await r.getVector(2147483648))!)).toEqual([4, 4])
    expect(Array.from((await r.getVector(0))!)).toEqual([1, 1])
    const hits = await r.search([2, 2], { k: 3 })
    expect(hits.map((h) => h.id)).toEqual([4294967295, 0, 2147483648])
    const byId = await r.searchById(4294967295, { k: 1 })
    expect(byId[0].id).toBe(4294967295)
  })

  it('adding an existing id replaces its vector; count does not change', async () => {
    const w = db.writer(132, { dimensions: 3, metric: 'euclidean' })
    await w.addItems([1, 2, 3], new Float32Array([0, 0, 0, 10, 10, 10, 20, 20, 20]))
    await w.build()
    const r = await db.reader(132)
    await w.addItem(1, [30, 30, 30])
    expect(await r.count()).toBe(3)
    expect(Array.from((await r.getVector(1))!)).toEqual([30, 30, 30])
    const res = await w.build()
    expect(res.items).toBe(3)
    const hits = await r.search([31, 31, 31], { k: 3 })
    expect(hits.map((h) => h.id)).toEqual([1, 3, 2])
    expect(await r.searchById(1, { k: 1 })).toEqual([{ id: 1, distance: 0 }])
  })
})

describe('deleteItems', () => {
  it('returns how many of the ids existed; deleting again returns 0', async () => {
    const w = db.writer(140, { dimensions: 2, metric: 'euclidean' })
    await w.addItems(range(0, 10), randomVectors(10, 2, 40))
    expect(await w.deleteItems([1, 2, 999])).toBe(2)
    expect(await w.deleteItems(new Uint32Array([1, 2]))).toBe(0)
    expect(await w.deleteItems(new Uint32Array([3]))).toBe(1)
    expect(await w.deleteItems([])).toBe(0)
    await w.build()
    const r = await db.reader(140)
    expect(await r.count()).toBe(7)
    for (const id of [1, 2, 3]) expect(await r.getVector(id)).toBeNull()
  })

  it('a deleted id can be added again and is found after the next build', async () => {
    const w = db.writer(141, { dimensions: 2, metric: 'euclidean' })
    await w.addItems(range(0, 10), randomVectors(10, 2, 41))
    await w.build()
    const r = await db.reader(141)
    expect(await w.deleteItems([4])).toBe(1)
    await w.build()
    await w.addItem(4, [100, 100])
    expect(Array.from((await r.getVector(4))!)).toEqual([100, 100])
    await w.build()
    const hits = await r.search([100, 100], { k: 1 })
    expect(hits).toEqual([{ id: 4, distance: 0 }])
  })
})

describe('build', () => {
  it('reports inserted, deleted, items and seconds; an unchanged index builds to no-op', async () => {
    const d = 8
    const n = 500
    const data = randomVectors(n + 3, d, 50)
    const w = db.writer(150, { dimensions: d, metric: 'euclidean' })
    await w.addItems(range(0, n), data.subarray(0, n * d))
    const first = await w.build()
    expect(first.inserted).toBe(n)
    expect(first.deleted).toBe(0)
    expect(first.items).toBe(n)
    expect(typeof first.seconds).toBe('number')
    expect(first.seconds).toBeGreaterThanOrEqual(0)

    const again = await w.build()
    expect(again.inserted).toBe(0)
    expect(again.deleted).toBe(0)
    expect(again.items).toBe(n)

    expect(await w.deleteItems(range(0, 5))).toBe(5)
    await w.addItems(range(n, 3), data.subarray(n * d))
    const third = await w.build()
    expect(third.inserted).toBe(3)
    expect(third.deleted).toBe(5)
    expect(third.items).toBe(n - 2)
    const r = await db.reader(150)
    expect(await r.count()).toBe(n - 2)
    const hits = await r.searchById(n + 1, { k: 1 })
    expect(hits[0].id).toBe(n + 1)
  })

  it('accepts m, m0, efConstruction and seed, and the result has good recall', async () => {
    const d = 16
    const { data, queries } = clusteredVectors(1500, 30, d, 10, 60)
    const { reader } = await fillAndBuild(db, 151, 'cosine', d, data, {
      build: { m: 8, m0: 16, efConstruction: 64, seed: 42 },
    })
    let sum = 0
    for (let q = 0; q < 30; q++) {
      const query = row(queries, q, d)
      const hits = await reader.search(query, { k: 10, ef: 100 })
      expectValidHits(hits)
      sum += recall(
        hits.map((h) => h.id),
        bruteForce('cosine', data, d, query, 10).map((h) => h.id),
      )
    }
    expect(sum / 30).toBeGreaterThanOrEqual(0.9)
  })

  it('incremental builds (several batches, deletes, re-adds) keep recall', async () => {
    const d = 16
    const { data, queries } = clusteredVectors(2000, 30, d, 12, 70)
    const w = db.writer(152, { dimensions: d, metric: 'euclidean' })
    for (let b = 0; b < 4; b++) {
      await w.addItems(range(b * 500, 500), data.subarray(b * 500 * d, (b + 1) * 500 * d))
      const res = await w.build()
      expect(res.inserted).toBe(500)
      expect(res.items).toBe((b + 1) * 500)
    }
    // delete every 10th item, build, re-add half of them
    const del = Array.from(range(0, 2000)).filter((id) => id % 10 === 0)
    expect(await w.deleteItems(del)).toBe(200)
    expect((await w.build()).items).toBe(1800)
    const back = del.filter((_, i) => i % 2 === 0)
    for (const id of back) await w.addItem(id, row(data, id, d))
    const res = await w.build()
    expect(res.inserted).toBe(100)
    expect(res.items).toBe(1900)

    const live = new Set(Array.from(range(0, 2000)).filter((id) => id % 10 !== 0 || back.includes(id)))
    const r = await db.reader(152)
    expect(await r.count()).toBe(1900)
    let sum = 0
    for (let q = 0; q < 30; q++) {
      const query = row(queries, q, d)
      const hits = await r.search(query, { k: 10, ef: 100 })
      for (const h of hits) expect(live.has(h.id), `dead id ${h.id}`).toBe(true)
      sum += recall(
        hits.map((h) => h.id),
        bruteForce('euclidean', data, d, query, 10, { allowed: live }).map((h) => h.id),
      )
    }
    expect(sum / 30).toBeGreaterThanOrEqual(0.9)
  })
})

describe('order and clear', () => {
  it('writer calls run in the order they were made (no await in between)', async () => {
    const w = db.writer(160, { dimensions: 2, metric: 'euclidean' })
    const p = [
      w.addItem(1, [1, 1]),
      w.deleteItems([1]),
      w.addItem(1, [2, 2]),
      w.addItems([2, 3], new Float32Array([3, 3, 4, 4])),
      w.deleteItems([3]),
      w.build(),
      w.addItem(4, [5, 5]),
    ]
    const out = await Promise.all(p)
    expect(out[1]).toBe(1)
    expect(out[4]).toBe(1)
    const built = out[5] as { inserted: number; items: number }
    expect(built.items).toBe(2)
    const r = await db.reader(160)
    expect(await r.count()).toBe(3)
    expect(Array.from((await r.getVector(1))!)).toEqual([2, 2])
    expect(await r.getVector(3)).toBeNull()
    // 4 was added after the build: not searchable yet
    const hits = await r.search([5, 5], { k: 3 })
    expect(hits.map((h) => h.id)).toEqual([2, 1])
  })

  it('clear() removes every item of the index and nothing else', async () => {
    const a = db.writer(170, { dimensions: 3, metric: 'euclidean' })
    const b = db.writer(171, { dimensions: 3, metric: 'euclidean' })
    await a.addItems(range(0, 20), randomVectors(20, 3, 80))
    await b.addItems(range(0, 20), randomVectors(20, 3, 81))
    await a.build()
    await b.build()
    const ra = await db.reader(170)
    await a.clear()
    expect(await ra.count()).toBe(0)
    expect(await ra.getVector(0)).toBeNull()
    await expectCode(() => db.reader(170), 'ERR_HANNOY_INDEX_NOT_FOUND', 'reader after clear')
    const info = (await db.indexes()).find((x) => x.index === 170)
    expect(info === undefined || info.items === 0).toBe(true)
    // the other index is untouched
    const rb = await db.reader(171)
    expect(await rb.count()).toBe(20)
    expect((await rb.search([0, 0, 0], { k: 5 })).length).toBe(5)
    // the cleared index can be filled and built again
    await a.addItems([7, 8], new Float32Array([1, 2, 3, 4, 5, 6]))
    const res = await a.build()
    expect(res.items).toBe(2)
    const ra2 = await db.reader(170)
    expect((await ra2.search([1, 2, 3], { k: 5 })).map((h) => h.id)).toEqual([7, 8])
  })
})
