// Database: open (path creation, mapSize, readOnly), persistence, indexes(), several indexes, map growth.
import * as fs from 'node:fs'
import * as path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { Database, Reader, Writer } from '../index.js'
import { Scratch, bruteForce, fillAndBuild, randomVectors, range, recall, row } from './helpers'

const scratch = new Scratch()
afterEach(() => scratch.cleanup())

describe('Database.open', () => {
  it('creates the directory when it is missing and returns a Database', async () => {
    const dir = path.join(scratch.dir(), 'new-db')
    expect(fs.existsSync(dir)).toBe(false)
    const db = scratch.track(await Database.open(dir))
    expect(db).toBeInstanceOf(Database)
    expect(fs.statSync(dir).isDirectory()).toBe(true)
    expect(await db.indexes()).toEqual([])
    const w = db.writer(0, { dimensions: 2 })
    expect(w).toBeInstanceOf(Writer)
    await w.addItem(1, [1, 2])
    await w.build()
    const r = await db.reader(0)
    expect(r).toBeInstanceOf(Reader)
  })

  it('opens an existing directory and accepts a mapSize', async () => {
    const dir = scratch.dir()
    const db = scratch.track(await Database.open(dir, { mapSize: 64 * 1024 * 1024 }))
    expect(await db.indexes()).toEqual([])
    await db.close()
    const db2 = scratch.track(await Database.open(dir, { mapSize: 1024 * 1024 * 1024, readOnly: false }))
    expect(await db2.indexes()).toEqual([])
  })

  it('everything survives close and reopen', async () => {
    const dir = scratch.dir()
    const d = 12
    const data = randomVectors(400, d, 1)
    const queries = randomVectors(5, d, 2)
    const db = await Database.open(dir)
    const { writer, reader } = await fillAndBuild(db, 3, 'euclidean', d, data)
    await writer.addItem(1000, row(data, 0, d)) // added, not built
    await writer.deleteItems([5, 6])
    const before = await Promise.all(Array.from({ length: 5 }, (_, q) => reader.search(row(queries, q, d), { k: 10, ef: 64 })))
    const listBefore = await db.indexes()
    await db.close()

    const db2 = scratch.track(await Database.open(dir))
    expect(await db2.indexes()).toEqual(listBefore)
    expect(listBefore).toEqual([{ index: 3, dimensions: d, metric: 'euclidean', quantization: 'none', items: 399 }])
    const r2 = await db2.reader(3)
    expect(await r2.count()).toBe(399)
    expect(await r2.getVector(5)).toBeNull()
    expect(Array.from((await r2.getVector(1000))!)).toEqual(Array.from(row(data, 0, d)))
    expect(Array.from((await r2.getVector(17))!)).toEqual(Array.from(row(data, 17, d)))
    for (let q = 0; q < 5; q++) {
      expect(await r2.search(row(queries, q, d), { k: 10, ef: 64 })).toEqual(before[q])
    }
    // the pending item gets built after the reopen
    const res = await db2.writer(3, { dimensions: d, metric: 'euclidean' }).build()
    expect(res.inserted).toBe(1)
    expect(res.items).toBe(399)
    // ef of the item count: an exhaustive walk, so the copy (item 0) is found too
    const hits = await r2.searchById(1000, { k: 2, ef: res.items })
    expect(new Set(hits.map((h) => h.id))).toEqual(new Set([0, 1000]))
  })

  it('read-only: an existing database can be read', async () => {
    const dir = scratch.dir()
    const db = await Database.open(dir)
    const data = randomVectors(100, 8, 3)
    await fillAndBuild(db, 1, 'cosine', 8, data)
    await db.close()
    const ro = scratch.track(await Database.open(dir, { readOnly: true }))
    expect(await ro.indexes()).toEqual([{ index: 1, dimensions: 8, metric: 'cosine', quantization: 'none', items: 100 }])
    const r = await ro.reader(1)
    expect(r.metric).toBe('cosine')
    expect(await r.count()).toBe(100)
    const hits = await r.searchById(7, { k: 5 })
    expect(hits[0].id).toBe(7)
    const batch = await r.searchBatch(data.subarray(0, 3 * 8), { k: 1, ef: 100 })
    expect(Array.from(batch.ids)).toEqual([0, 1, 2])
  })
})

describe('indexes()', () => {
  it('lists every index that has metadata, with dimensions, metric and live item count', async () => {
    const db = scratch.track(await Database.open(scratch.dir()))
    expect(await db.indexes()).toEqual([])
    const a = db.writer(7, { dimensions: 4, metric: 'euclidean' })
    const b = db.writer(0, { dimensions: 2 })
    const c = db.writer(65535, { dimensions: 64, metric: 'hamming' })
    db.writer(12, { dimensions: 3, metric: 'manhattan' }) // never written: not listed
    expect(await db.indexes()).toEqual([])

    await a.addItems(range(0, 10), randomVectors(10, 4, 4))
    await b.addItem(5, [1, 1])
    await c.addItems([1, 2], new Float32Array(128))
    const sorted = async () => (await db.indexes()).slice().sort((x, y) => x.index - y.index)
    expect(await sorted()).toEqual([
      { index: 0, dimensions: 2, metric: 'cosine', quantization: 'none', items: 1 },
      { index: 7, dimensions: 4, metric: 'euclidean', quantization: 'none', items: 10 },
      { index: 65535, dimensions: 64, metric: 'hamming', quantization: 'none', items: 2 },
    ])
    // built or not, items counts live items; deletes lower it
    await a.build()
    await a.deleteItems([0, 1, 2])
    expect((await sorted())[1]).toEqual({ index: 7, dimensions: 4, metric: 'euclidean', quantization: 'none', items: 7 })
    await a.build()
    expect((await sorted())[1].items).toBe(7)
  })

  it('every metric name round-trips through indexes() and reader.metric', async () => {
    const db = scratch.track(await Database.open(scratch.dir()))
    const metrics = ['euclidean', 'cosine', 'manhattan', 'hamming', 'bq-euclidean', 'bq-cosine', 'bq-manhattan'] as const
    for (const [i, metric] of metrics.entries()) {
      const w = db.writer(i, { dimensions: 16, metric })
      expect(w.metric).toBe(metric)
      await w.addItems([1, 2, 3], randomVectors(3, 16, 10 + i))
      await w.build()
      const r = await db.reader(i)
      expect(r.metric).toBe(metric)
      expect(r.dimensions).toBe(16)
    }
    const list = (await db.indexes()).slice().sort((x, y) => x.index - y.index)
    expect(list.map((x) => x.metric)).toEqual([...metrics])
    expect(list.every((x) => x.items === 3 && x.dimensions === 16)).toBe(true)
  })

  it('many indexes in one directory are independent', async () => {
    const db = scratch.track(await Database.open(scratch.dir()))
    const d = 3
    for (let i = 0; i < 40; i++) {
      const w = db.writer(i * 1000, { dimensions: d, metric: 'euclidean' })
      // same ids everywhere, vectors that tell the index apart
      await w.addItems([1, 2], new Float32Array([i, 0, 0, i, 1, 0]))
      await w.build()
    }
    const list = await db.indexes()
    expect(list.length).toBe(40)
    for (const i of [0, 13, 39]) {
      const r = await db.reader(i * 1000)
      expect(Array.from((await r.getVector(1))!)).toEqual([i, 0, 0])
      const hits = await r.search([i, 0, 0], { k: 5 })
      expect(hits.map((h) => h.id)).toEqual([1, 2])
    }
    // deleting in one index does not touch another
    await db.writer(13000, { dimensions: d, metric: 'euclidean' }).deleteItems([1])
    expect(await (await db.reader(13000)).getVector(1)).toBeNull()
    expect(await (await db.reader(14000)).getVector(1)).not.toBeNull()
  })
})

describe('map growth', () => {
  it('a 1 MiB map grows to hold 20,000 × 64-d vectors and their graph', async () => {
    const dir = scratch.dir()
    const db = scratch.track(await Database.open(dir, { mapSize: 1 << 20 }))
    const d = 64
    const n = 20_000
    const data = randomVectors(n, d, 20)
    const w = db.writer(1, { dimensions: d, metric: 'euclidean' })
    for (let start = 0; start < n; start += 5000) {
      await w.addItems(range(start, 5000), data.subarray(start * d, (start + 5000) * d))
    }
    const res = await w.build()
    expect(res.inserted).toBe(n)
    expect(res.items).toBe(n)
    const r = await db.reader(1)
    expect(await r.count()).toBe(n)
    expect(Array.from((await r.getVector(19_999))!)).toEqual(Array.from(row(data, 19_999, d)))
    const queries = randomVectors(10, d, 21)
    let sum = 0
    for (let q = 0; q < 10; q++) {
      const hits = await r.search(row(queries, q, d), { k: 10, ef: 128 })
      sum += recall(
        hits.map((h) => h.id),
        bruteForce('euclidean', data, d, row(queries, q, d), 10).map((h) => h.id),
      )
    }
    // 64-d gaussian data is hard for any ANN: only check that search works sensibly
    expect(sum / 10).toBeGreaterThanOrEqual(0.5)
    // the data file really is larger than the initial map
    const size = fs.readdirSync(dir).reduce((s, f) => s + fs.statSync(path.join(dir, f)).size, 0)
    expect(size).toBeGreaterThan(1 << 20)
    await db.close()
    // and it reopens with the small mapSize asked again
    const db2 = scratch.track(await Database.open(dir, { mapSize: 1 << 20 }))
    expect(await (await db2.reader(1)).count()).toBe(n)
  })
})
