// Reader: search / searchBatch / searchById / getVector / count, checked against brute force.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Database } from '../index.js'
import {
  BQ_METRICS,
  FLOAT_METRICS,
  PAD_ID,
  Scratch,
  binaryVectors,
  bruteForce,
  closeTo,
  clusteredVectors,
  distanceFn,
  expectNearestFirst,
  expectValidHits,
  fillAndBuild,
  hammingBits,
  mulberry32,
  randomVectors,
  range,
  recall,
  row,
  signHamming,
} from './helpers'

const scratch = new Scratch()
let db: Database

beforeAll(async () => {
  db = scratch.track(await Database.open(scratch.dir()))
})
afterAll(() => scratch.cleanup())

// Small data set: 200 random vectors, ef larger than n, so HNSW should be (nearly) exact.
const N = 200
const D = 16
const K = 10
const EF = 256

describe('exact distances and recall against brute force (200 vectors, ef > n)', () => {
  FLOAT_METRICS.forEach((metric, i) => {
    it(`${metric}: nearest first, recall >= 0.95, distances equal brute force within 1e-4`, async () => {
      const data = randomVectors(N, D, 100 + i)
      const queries = randomVectors(25, D, 200 + i)
      const { reader } = await fillAndBuild(db, 10 + i, metric, D, data)
      expect(reader.metric).toBe(metric)
      expect(reader.dimensions).toBe(D)
      expect(reader.index).toBe(10 + i)
      const dist = distanceFn(metric)
      let sum = 0
      for (let q = 0; q < 25; q++) {
        const query = row(queries, q, D)
        const hits = await reader.search(query, { k: K, ef: EF })
        expectValidHits(hits)
        expect(hits.length).toBe(K)
        const truth = bruteForce(metric, data, D, query, K)
        sum += recall(
          hits.map((h) => h.id),
          truth.map((h) => h.id),
        )
        for (const h of hits) {
          expect(h.id).toBeLessThan(N)
          const exact = dist(row(data, h.id, D), query)
          expect(closeTo(h.distance, exact), `${metric} id ${h.id}: got ${h.distance}, brute force ${exact}`).toBe(true)
        }
      }
      expect(sum / 25).toBeGreaterThanOrEqual(0.95)
    })
  })

  it('hamming: distances are the number of differing bits, recall >= 0.95', async () => {
    const d = 64
    const data = binaryVectors(N, d, 300)
    const queries = binaryVectors(25, d, 301)
    const { reader } = await fillAndBuild(db, 20, 'hamming', d, data)
    expect(reader.metric).toBe('hamming')
    let sum = 0
    for (let q = 0; q < 25; q++) {
      const query = row(queries, q, d)
      const hits = await reader.search(query, { k: K, ef: EF })
      expectValidHits(hits)
      expect(hits.length).toBe(K)
      const truth = bruteForce('hamming', data, d, query, K)
      // ties are common with bits: count a hit as right when it is within the k-th true distance
      const kth = truth[K - 1].distance
      sum += hits.filter((h) => h.distance <= kth).length / K
      for (const h of hits) {
        const exact = hammingBits(row(data, h.id, d), query)
        expect(h.distance, `id ${h.id}`).toBe(exact)
        expect(Number.isInteger(h.distance)).toBe(true)
      }
    }
    expect(sum / 25).toBeGreaterThanOrEqual(0.95)
  })

  BQ_METRICS.forEach((metric, i) => {
    it(`${metric}: nearest first, ranking follows the signs of the components`, async () => {
      const d = 64
      const data = randomVectors(N, d, 400 + i)
      const queries = randomVectors(25, d, 500 + i)
      const { reader } = await fillAndBuild(db, 30 + i, metric, d, data)
      expect(reader.metric).toBe(metric)
      let sum = 0
      for (let q = 0; q < 25; q++) {
        const query = row(queries, q, d)
        const hits = await reader.search(query, { k: K, ef: EF })
        expectValidHits(hits)
        expect(hits.length).toBe(K)
        // every binary-quantized metric ranks by the number of differing signs; ties are allowed
        const truth = bruteForce(metric, data, d, query, K)
        const kth = truth[K - 1].distance
        sum += hits.filter((h) => signHamming(row(data, h.id, d), query) <= kth).length / K
      }
      expect(sum / 25).toBeGreaterThanOrEqual(0.9)
    })
  })
})

describe('recall@10 on clustered data (seeded)', () => {
  for (const [i, metric] of (['cosine', 'euclidean'] as const).entries()) {
    it(`${metric}: recall@10 >= 0.9 on 3000 clustered 32-d vectors`, async () => {
      const d = 32
      const { data, queries } = clusteredVectors(3000, 100, d, 24, 7 + i)
      const { reader } = await fillAndBuild(db, 40 + i, metric, d, data, { batch: 1000 })
      let sum = 0
      for (let q = 0; q < 100; q++) {
        const query = row(queries, q, d)
        const hits = await reader.search(query, { k: 10, ef: 100 })
        expectNearestFirst(hits)
        const truth = bruteForce(metric, data, d, query, 10)
        sum += recall(
          hits.map((h) => h.id),
          truth.map((h) => h.id),
        )
      }
      expect(sum / 100).toBeGreaterThanOrEqual(0.9)

      // the same through searchBatch
      const batch = await reader.searchBatch(queries, { k: 10, ef: 100 })
      let bsum = 0
      for (let q = 0; q < 100; q++) {
        const got = Array.from(batch.ids.subarray(q * 10, q * 10 + 10))
        const truth = bruteForce(metric, data, d, row(queries, q, d), 10)
        bsum += recall(
          got,
          truth.map((h) => h.id),
        )
      }
      expect(bsum / 100).toBeGreaterThanOrEqual(0.9)
    })
  }
})

describe('search options and inputs', () => {
  const d = 8
  const n = 300
  const data = randomVectors(n, d, 600)
  let reader: Awaited<ReturnType<Database['reader']>>
  beforeAll(async () => {
    ;({ reader } = await fillAndBuild(db, 50, 'euclidean', d, data))
  })

  it('a number[] query gives the same answer as a Float32Array query', async () => {
    const q = randomVectors(1, d, 601)
    const a = await reader.search(q, { k: 10, ef: 64 })
    const b = await reader.search(Array.from(q), { k: 10, ef: 64 })
    expect(b).toEqual(a)
  })

  it('default options return a non-empty list, nearest first', async () => {
    const hits = await reader.search(randomVectors(1, d, 602))
    expect(hits.length).toBeGreaterThan(0)
    expect(hits.length).toBeLessThanOrEqual(n)
    expectValidHits(hits)
  })

  it('k bounds the number of results; k larger than the index returns every item', async () => {
    const q = randomVectors(1, d, 603)
    for (const k of [1, 3, 25]) {
      const hits = await reader.search(q, { k, ef: 300 })
      expect(hits.length).toBe(k)
      expectValidHits(hits)
    }
    const all = await reader.search(q, { k: 1000, ef: 1000 })
    expect(all.length).toBe(n)
    expectValidHits(all)
  })

  it('k = 1 finds the exact nearest with a large ef', async () => {
    for (let q = 0; q < 10; q++) {
      const query = randomVectors(1, d, 700 + q)
      const [hit] = await reader.search(query, { k: 1, ef: 300 })
      expect(hit.id).toBe(bruteForce('euclidean', data, d, query, 1)[0].id)
    }
  })

  it('results are plain { id, distance } objects with the ids and distances of searchBatch', async () => {
    const q = randomVectors(1, d, 605)
    const hits = await reader.search(q, { k: 10, ef: 64 })
    const batch = await reader.searchBatch(q, { k: 10, ef: 64 })
    expect(hits.length).toBe(10)
    hits.forEach((hit, j) => {
      expect(Object.getPrototypeOf(hit)).toBe(Object.prototype)
      expect(Object.keys(hit)).toEqual(['id', 'distance'])
      expect(hit.id).toBe(batch.ids[j])
      expect(hit.distance).toBe(batch.distances[j])
    })
    const byId = await reader.searchById(hits[0].id, { k: 5, ef: 64 })
    expect(byId.map((h) => Object.keys(h))).toEqual(Array(5).fill(['id', 'distance']))
    expect(byId[0]).toEqual({ id: hits[0].id, distance: 0 })
  })

  it('ids above 2^31 come back unchanged', async () => {
    const big = [2 ** 31, 2 ** 32 - 2, 3_000_000_123]
    const { reader: r } = await fillAndBuild(db, 51, 'euclidean', d, randomVectors(3, d, 606), { ids: Uint32Array.from(big) })
    const hits = await r.search(randomVectors(1, d, 607), { k: 3, ef: 16 })
    expect(hits.map((h) => h.id).sort((a, b) => a - b)).toEqual([...big].sort((a, b) => a - b))
    expect((await r.searchById(2 ** 32 - 2, { k: 1 }))[0]).toEqual({ id: 2 ** 32 - 2, distance: 0 })
  })

  it('the same search twice gives the same answer', async () => {
    const q = randomVectors(1, d, 604)
    expect(await reader.search(q, { k: 10, ef: 32 })).toEqual(await reader.search(q, { k: 10, ef: 32 }))
  })
})

describe('filter', () => {
  const d = 16
  const n = 1000
  const data = randomVectors(n, d, 800)
  const queries = randomVectors(10, d, 801)
  let reader: Awaited<ReturnType<Database['reader']>>
  beforeAll(async () => {
    ;({ reader } = await fillAndBuild(db, 60, 'euclidean', d, data))
  })

  it('a large filter: only allowed ids come back, recall >= 0.9 against the filtered brute force', async () => {
    const allowedArr = Array.from(range(0, n)).filter((id) => id % 3 === 0)
    const allowed = new Set(allowedArr)
    let sum = 0
    for (let q = 0; q < 10; q++) {
      const query = row(queries, q, d)
      const hits = await reader.search(query, { k: 10, ef: 128, filter: Uint32Array.from(allowedArr) })
      expectValidHits(hits)
      expect(hits.length).toBe(10)
      for (const h of hits) expect(allowed.has(h.id), `id ${h.id} is not in the filter`).toBe(true)
      const truth = bruteForce('euclidean', data, d, query, 10, { allowed })
      sum += recall(
        hits.map((h) => h.id),
        truth.map((h) => h.id),
      )
    }
    expect(sum / 10).toBeGreaterThanOrEqual(0.9)
  })

  it('a small filter gives the exact answer (number[] and Uint32Array alike)', async () => {
    const rng = mulberry32(802)
    const small = new Set<number>()
    while (small.size < 15) small.add(Math.floor(rng() * n))
    const smallArr = Array.from(small)
    for (let q = 0; q < 10; q++) {
      const query = row(queries, q, d)
      const truth = bruteForce('euclidean', data, d, query, 10, { allowed: small })
      const hits = await reader.search(query, { k: 10, filter: smallArr })
      expect(hits.map((h) => h.id)).toEqual(truth.map((h) => h.id))
      hits.forEach((h, j) => expect(closeTo(h.distance, truth[j].distance)).toBe(true))
      const hits2 = await reader.search(query, { k: 10, filter: Uint32Array.from(smallArr) })
      expect(hits2).toEqual(hits)
    }
  })

  it('a filter with fewer allowed ids than k returns just those; unknown ids are ignored', async () => {
    const query = row(queries, 0, d)
    const hits = await reader.search(query, { k: 10, filter: [5, 17, 999_999, 4294967295] })
    expect(hits.map((h) => h.id).sort((a, b) => a - b)).toEqual([5, 17])
    expectNearestFirst(hits)
  })

  it('repeated ids in a filter count once', async () => {
    const query = row(queries, 0, d)
    const hits = await reader.search(query, { k: 10, filter: [17, 5, 17, 5, 5] })
    expect(hits.map((h) => h.id).sort((a, b) => a - b)).toEqual([5, 17])
  })

  it('an empty filter returns nothing', async () => {
    expect(await reader.search(row(queries, 0, d), { k: 10, filter: [] })).toEqual([])
  })

  it('filter applies to searchById and searchBatch too', async () => {
    const allowed = new Set([3, 30, 300, 301, 302, 303, 304, 305, 306, 307, 308, 309, 310])
    const byId = await reader.searchById(0, { k: 5, filter: Array.from(allowed) })
    expect(byId.length).toBe(5)
    for (const h of byId) expect(allowed.has(h.id)).toBe(true)
    expect(byId.map((h) => h.id)).toEqual(
      bruteForce('euclidean', data, d, row(data, 0, d), 5, { allowed }).map((h) => h.id),
    )

    const batch = await reader.searchBatch(queries.slice(0, 3 * d), { k: 5, filter: Uint32Array.from(allowed) })
    expect(batch.k).toBe(5)
    for (let q = 0; q < 3; q++) {
      const ids = Array.from(batch.ids.subarray(q * 5, q * 5 + 5))
      expect(ids).toEqual(bruteForce('euclidean', data, d, row(queries, q, d), 5, { allowed }).map((h) => h.id))
    }
  })
})

describe('searchById', () => {
  FLOAT_METRICS.forEach((metric, i) => {
    it(`${metric}: the item itself comes first at distance 0, then its neighbours`, async () => {
      const d = 12
      const data = randomVectors(150, d, 900 + i)
      const { reader } = await fillAndBuild(db, 70 + i, metric, d, data)
      for (const id of [0, 42, 149]) {
        const hits = await reader.searchById(id, { k: 8, ef: 200 })
        expectValidHits(hits)
        expect(hits.length).toBe(8)
        expect(hits[0].id).toBe(id)
        expect(Math.abs(hits[0].distance)).toBeLessThanOrEqual(1e-5)
        const truth = bruteForce(metric, data, d, row(data, id, d), 8)
        expect(
          recall(
            hits.map((h) => h.id),
            truth.map((h) => h.id),
          ),
        ).toBeGreaterThanOrEqual(0.875)
        // same as searching with the stored vector
        const v = await reader.getVector(id)
        expect(v).not.toBeNull()
        const viaSearch = await reader.search(v!, { k: 8, ef: 200 })
        expect(viaSearch.map((h) => h.id)).toEqual(hits.map((h) => h.id))
      }
      // a filter that leaves the item out leaves it out
      const others = Array.from(range(1, 149))
      const hits = await reader.searchById(0, { k: 5, filter: others })
      expect(hits.map((h) => h.id)).not.toContain(0)
      expect(hits.length).toBe(5)
    })
  })
})

describe('searchBatch', () => {
  const d = 16
  const data = randomVectors(N, d, 1000)
  const queries = randomVectors(20, d, 1001)
  let reader: Awaited<ReturnType<Database['reader']>>
  beforeAll(async () => {
    ;({ reader } = await fillAndBuild(db, 80, 'euclidean', d, data))
  })

  it('returns n × k typed arrays, row-major, each row nearest first and equal to brute force', async () => {
    const res = await reader.searchBatch(queries, { k: K, ef: EF })
    expect(res.k).toBe(K)
    expect(res.ids).toBeInstanceOf(Uint32Array)
    expect(res.distances).toBeInstanceOf(Float32Array)
    expect(res.ids.length).toBe(20 * K)
    expect(res.distances.length).toBe(20 * K)
    let sum = 0
    for (let q = 0; q < 20; q++) {
      const query = row(queries, q, d)
      const ids = Array.from(res.ids.subarray(q * K, (q + 1) * K))
      const dists = Array.from(res.distances.subarray(q * K, (q + 1) * K))
      expectValidHits(ids.map((id, j) => ({ id, distance: dists[j] })))
      const truth = bruteForce('euclidean', data, d, query, K)
      sum += recall(
        ids,
        truth.map((h) => h.id),
      )
      ids.forEach((id, j) => {
        const exact = distanceFn('euclidean')(row(data, id, d), query)
        expect(closeTo(dists[j], exact), `row ${q} id ${id}: ${dists[j]} vs ${exact}`).toBe(true)
      })
      // the same as a single search
      const single = await reader.search(query, { k: K, ef: EF })
      expect(new Set(ids)).toEqual(new Set(single.map((h) => h.id)))
    }
    expect(sum / 20).toBeGreaterThanOrEqual(0.95)
  })

  it('a row with fewer than k results is padded with 0xFFFFFFFF and Infinity', async () => {
    const res = await reader.searchBatch(queries.slice(0, 4 * d), { k: 10, filter: [1, 2, 3] })
    expect(res.k).toBe(10)
    expect(res.ids.length).toBe(40)
    for (let q = 0; q < 4; q++) {
      const ids = Array.from(res.ids.subarray(q * 10, q * 10 + 10))
      const dists = Array.from(res.distances.subarray(q * 10, q * 10 + 10))
      expect(ids.slice(0, 3).sort()).toEqual([1, 2, 3])
      expect(dists.slice(0, 3).every(Number.isFinite)).toBe(true)
      expect(ids.slice(3)).toEqual(new Array(7).fill(PAD_ID))
      expect(dists.slice(3)).toEqual(new Array(7).fill(Infinity))
    }
  })

  it('k larger than the index pads every row', async () => {
    const w = db.writer(81, { dimensions: 4, metric: 'euclidean' })
    await w.addItems([10, 11, 12, 13], new Float32Array([0, 0, 0, 0, 1, 0, 0, 0, 0, 2, 0, 0, 0, 0, 3, 0]))
    await w.build()
    const r = await db.reader(81)
    const res = await r.searchBatch(new Float32Array([0, 0, 0, 0, 0, 0, 3, 0]), { k: 6 })
    expect(res.k).toBe(6)
    // query 1 = (0,0,0,0): 10 at 0, 11 at 1, 12 at 2, 13 at 3; query 2 = (0,0,3,0): 13 at 0, 10 at 3, 11 at √10, 12 at √13
    expect(Array.from(res.ids)).toEqual([10, 11, 12, 13, PAD_ID, PAD_ID, 13, 10, 11, 12, PAD_ID, PAD_ID])
    const dist = Array.from(res.distances)
    const want = [0, 1, 2, 3, Infinity, Infinity, 0, 3, Math.sqrt(10), Math.sqrt(13), Infinity, Infinity]
    dist.forEach((x, j) => {
      if (want[j] === Infinity) expect(x).toBe(Infinity)
      else expect(closeTo(x, want[j]), `distance ${j}: ${x} vs ${want[j]}`).toBe(true)
    })
  })
})

describe('live state: deletes, unbuilt items, getVector, count', () => {
  const d = 8
  const n = 300
  const data = randomVectors(n, d, 1100)

  it('deleted ids are never returned once deleteItems resolved, even before the next build', async () => {
    const { writer, reader } = await fillAndBuild(db, 90, 'euclidean', d, data)
    const query = randomVectors(1, d, 1101)
    const before = await reader.search(query, { k: 10, ef: 128 })
    const gone = before.slice(0, 5).map((h) => h.id)
    expect(await writer.deleteItems(gone)).toBe(5)
    const goneSet = new Set(gone)

    const after = await reader.search(query, { k: 10, ef: 128 })
    expectValidHits(after)
    expect(after.length).toBe(10)
    for (const h of after) expect(goneSet.has(h.id), `deleted id ${h.id} returned`).toBe(false)
    // a filter naming deleted ids does not bring them back
    const filtered = await reader.search(query, { k: 10, filter: [...gone, before[7].id] })
    expect(filtered.map((h) => h.id)).toEqual([before[7].id])
    // nor searchById, nor searchBatch
    const byId = await reader.searchById(before[9].id, { k: 20, ef: 128 })
    for (const h of byId) expect(goneSet.has(h.id)).toBe(false)
    const batch = await reader.searchBatch(query, { k: 10, ef: 128 })
    for (const id of batch.ids) expect(goneSet.has(id)).toBe(false)
    // getVector is null for a deleted id, count went down
    expect(await reader.getVector(gone[0])).toBeNull()
    expect(await reader.count()).toBe(n - 5)

    // after the build they stay gone, and the rest is still found
    const res = await writer.build()
    expect(res.deleted).toBe(5)
    expect(res.items).toBe(n - 5)
    const rebuilt = await reader.search(query, { k: 10, ef: 300 })
    for (const h of rebuilt) expect(goneSet.has(h.id)).toBe(false)
    const truth = bruteForce('euclidean', data, d, query, 10, { exclude: goneSet })
    expect(
      recall(
        rebuilt.map((h) => h.id),
        truth.map((h) => h.id),
      ),
    ).toBeGreaterThanOrEqual(0.9)
  })

  it('items added after the last build are counted but not returned until build(); a reader sees each commit', async () => {
    const { writer, reader } = await fillAndBuild(db, 91, 'euclidean', d, data)
    expect(await reader.count()).toBe(n)
    const query = randomVectors(1, d, 1102)
    await writer.addItem(50_000, query)
    // the reader made before the write sees the commit at its next call
    expect(await reader.count()).toBe(n + 1)
    expect(Array.from((await reader.getVector(50_000))!)).toEqual(Array.from(query))
    const before = await reader.search(query, { k: 5, ef: 128 })
    expect(before.map((h) => h.id)).not.toContain(50_000)

    const res = await writer.build()
    expect(res.inserted).toBe(1)
    expect(res.items).toBe(n + 1)
    // ef of the item count: an exhaustive walk finds the new item whatever the graph
    const after = await reader.search(query, { k: 5, ef: n + 1 })
    expect(after[0].id).toBe(50_000)
    expect(after[0].distance).toBeLessThanOrEqual(1e-6)
  })

  it('getVector returns null for an id never added; count counts live items', async () => {
    const { writer, reader } = await fillAndBuild(db, 92, 'cosine', d, data.slice(0, 20 * d))
    expect(await reader.getVector(20)).toBeNull()
    expect(await reader.getVector(4294967295)).toBeNull()
    expect(await reader.count()).toBe(20)
    const v = await reader.getVector(7)
    expect(v).toBeInstanceOf(Float32Array)
    expect(v!.length).toBe(d)
    await writer.deleteItems(new Uint32Array([7, 8, 1234]))
    expect(await reader.count()).toBe(18)
    expect(await reader.getVector(7)).toBeNull()
  })

  it('the default reader is index 0', async () => {
    const w = db.writer(0, { dimensions: 3, metric: 'euclidean' })
    await w.addItems([1, 2], new Float32Array([1, 0, 0, 0, 1, 0]))
    await w.build()
    const r = await db.reader()
    expect(r.index).toBe(0)
    expect(r.dimensions).toBe(3)
    expect(r.metric).toBe('euclidean')
    const hits = await r.search([1, 0, 0], { k: 2 })
    expect(hits.map((h) => h.id)).toEqual([1, 2])
    expect(hits[0].distance).toBeCloseTo(0, 5)
    expect(hits[1].distance).toBeCloseTo(Math.SQRT2, 5)
  })
})
