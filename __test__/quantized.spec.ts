// Quantized indexes from JavaScript: the writer's quantization option, what readers and
// indexes() report, rescored (exact) and estimated distances, the original vectors, and the
// error codes of bad options.
import { afterEach, describe, expect, it } from 'vitest'
import { Database } from '../index.js'
import {
  Scratch,
  bruteForce,
  clusteredVectors,
  closeTo,
  distanceFn,
  expectCode,
  expectThrowCode,
  expectValidHits,
  range,
  recall,
  row,
} from './helpers'

const scratch = new Scratch()
afterEach(() => scratch.cleanup())

const D = 128
const N = 2000
const { data, queries } = clusteredVectors(N, 20, D, 30, 4242, 0.6)

async function quantizedIndex(quantization: 'int8' | 'binary', metric: 'cosine' | 'euclidean') {
  const db = scratch.track(await Database.open(scratch.dir()))
  const writer = db.writer(0, { dimensions: D, metric, quantization })
  expect(writer.quantization).toBe(quantization)
  await writer.addItems(range(0, N), data)
  await writer.build()
  return { db, writer, reader: await db.reader(0) }
}

describe.each(['int8', 'binary'] as const)("quantization '%s'", (quantization) => {
  it.each(['cosine', 'euclidean'] as const)('%s: recall against brute force, exact rescored distances', async (metric) => {
    const { db, reader } = await quantizedIndex(quantization, metric)
    expect(reader.quantization).toBe(quantization)
    expect(await db.indexes()).toEqual([{ index: 0, dimensions: D, metric, quantization, items: N }])
    const dist = distanceFn(metric)
    let total = 0
    for (let q = 0; q < 20; q++) {
      const query = row(queries, q, D)
      const hits = await reader.search(query, { k: 10, ef: 64 })
      expectValidHits(hits)
      for (const h of hits) expect(closeTo(h.distance, dist(row(data, h.id, D), query)), `item ${h.id}`).toBe(true)
      total += recall(
        hits.map((h) => h.id),
        bruteForce(metric, data, D, query, 10).map((h) => h.id),
      )
    }
    expect(total / 20).toBeGreaterThanOrEqual(0.9)
  })

  it('rescore: false returns the estimates; searchBatch and searchById answer too', async () => {
    const { reader } = await quantizedIndex(quantization, 'cosine')
    const query = row(queries, 0, D)
    const exact = await reader.search(query, { k: 10, oversampling: 4 })
    const estimated = await reader.search(query, { k: 10, oversampling: 4, rescore: false })
    expectValidHits(estimated)
    const dist = distanceFn('cosine')
    const off = estimated.filter((h) => !closeTo(h.distance, dist(row(data, h.id, D), query))).length
    expect(off).toBeGreaterThan(0)
    expect(recall(estimated.map((h) => h.id), exact.map((h) => h.id))).toBeGreaterThanOrEqual(0.5)
    const batch = await reader.searchBatch(queries.subarray(0, 3 * D), { k: 10, oversampling: 4 })
    expect(Array.from(batch.ids.subarray(0, 10))).toEqual(exact.map((h) => h.id))
    const byId = await reader.searchById(17, { k: 5 })
    expect(byId[0].id).toBe(17)
    expect(byId[0].distance).toBeCloseTo(0, 5)
  })

  it('getVector returns the original vector; the quantization is fixed at creation', async () => {
    const { db, writer, reader } = await quantizedIndex(quantization, 'euclidean')
    expect(Array.from((await reader.getVector(5))!)).toEqual(Array.from(row(data, 5, D)))
    const other = quantization === 'int8' ? 'binary' : 'int8'
    for (const q of [other, 'none'] as const) {
      expectThrowCode(
        () => db.writer(0, { dimensions: D, metric: 'euclidean', quantization: q }),
        'ERR_HANNOY_METRIC_MISMATCH',
        q,
      )
    }
    expectThrowCode(() => db.writer(0, { dimensions: D, metric: 'euclidean' }), 'ERR_HANNOY_METRIC_MISMATCH')
    // later items are coded with the stored quantizer; retrain learns it again from all items
    const query = row(queries, 2, D)
    const estimates = async () => (await reader.search(query, { k: 5, rescore: false })).map((h) => h.distance)
    await writer.addItems([N + 1], row(data, 3, D))
    await writer.build()
    const before = await estimates()
    // items from elsewhere (shifted and scaled) widen the ranges / move the centroid
    const shifted = data.slice(0, 500 * D).map((x) => 3 * x + 2)
    await writer.addItems(range(N + 10, 500), shifted)
    const stats = await writer.build({ retrain: true })
    expect(stats.items).toBe(N + 501)
    const after = await estimates()
    expect(after).not.toEqual(before) // the codes were made again with another quantizer
    // ef of the item count: an exhaustive walk, so both copies of the vector are found
    const hits = await reader.search(row(data, 3, D), { k: 2, ef: N + 501 })
    expect(new Set(hits.map((h) => h.id))).toEqual(new Set([3, N + 1]))
    await expectCode(() => writer.build({ retrain: 'yes' as unknown as boolean }), 'ERR_HANNOY_INVALID_ARGUMENT')
  })
})

describe('quantization options', () => {
  it('bad values get ERR_HANNOY_INVALID_ARGUMENT and create nothing', async () => {
    const db = scratch.track(await Database.open(scratch.dir()))
    for (const quantization of ['int4', 'BINARY', 1, null]) {
      expectThrowCode(
        () => db.writer(0, { dimensions: 4, quantization: quantization as unknown as 'int8' }),
        'ERR_HANNOY_INVALID_ARGUMENT',
        String(quantization),
      )
    }
    for (const metric of ['manhattan', 'hamming', 'bq-cosine'] as const) {
      expectThrowCode(
        () => db.writer(1, { dimensions: 4, metric, quantization: 'int8' }),
        'ERR_HANNOY_INVALID_ARGUMENT',
        metric,
      )
    }
    expect(await db.indexes()).toEqual([])
    const w = db.writer(2, { dimensions: 4, quantization: 'none' })
    expect(w.quantization).toBe('none')
    await w.addItems([1, 2], new Float32Array([1, 0, 0, 0, 0, 1, 0, 0]))
    await w.build()
    const reader = await db.reader(2)
    expect(reader.quantization).toBe('none')
    for (const oversampling of [0, -1, 1.5, 'x', 1001]) {
      await expectCode(
        () => reader.search([1, 0, 0, 0], { oversampling: oversampling as number }),
        'ERR_HANNOY_INVALID_ARGUMENT',
        String(oversampling),
      )
    }
    await expectCode(() => reader.search([1, 0, 0, 0], { rescore: 1 as unknown as boolean }), 'ERR_HANNOY_INVALID_ARGUMENT')
    // on an unquantized index the options change nothing
    expect(await reader.search([1, 0, 0, 0], { k: 2, oversampling: 5, rescore: false })).toEqual(
      await reader.search([1, 0, 0, 0], { k: 2 }),
    )
  })

  it('a quantized index survives reopening read-only and verifies', async () => {
    const dir = scratch.dir()
    const db = await Database.open(dir)
    const w = db.writer(0, { dimensions: D, metric: 'cosine', quantization: 'binary' })
    await w.addItems(range(0, 500), data.subarray(0, 500 * D))
    await w.build()
    const before = await (await db.reader(0)).search(row(queries, 1, D))
    await db.close()
    const ro = scratch.track(await Database.open(dir, { readOnly: true, verify: true }))
    const reader = await ro.reader(0)
    expect(reader.quantization).toBe('binary')
    expect(await reader.search(row(queries, 1, D))).toEqual(before)
    const report = await ro.verify()
    expect(report.indexes).toEqual([{ index: 0, vectors: 500, nodes: 500 }])
  })
})
