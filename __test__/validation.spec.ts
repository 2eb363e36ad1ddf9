// Input validation: wrong types, NaN / infinite components, wrong lengths, ids and index ids out of
// range, bad k / ef / M — each rejected with ERR_HANNOY_INVALID_ARGUMENT (or DIMENSION_MISMATCH for a
// single vector of the wrong length), and NOTHING stored by a rejected call.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Database } from '../index.js'
import { Scratch, expectCode, expectOneOfCodes, expectThrowCode, randomVectors, range } from './helpers'

const INVALID = 'ERR_HANNOY_INVALID_ARGUMENT'
const D = 4
const N = 10

const scratch = new Scratch()
let db: Database
let w: ReturnType<Database['writer']>
let r: Awaited<ReturnType<Database['reader']>>
const data = randomVectors(N, D, 1)
let snapshot: Array<number[] | null> = []

// `any` on purpose: these calls pass wrong types
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any

beforeAll(async () => {
  db = scratch.track(await Database.open(scratch.dir()))
  w = db.writer(1, { dimensions: D, metric: 'euclidean' })
  await w.addItems(range(0, N), data)
  await w.build()
  r = await db.reader(1)
  snapshot = await Promise.all(Array.from(range(0, N)).map(async (id) => Array.from((await r.getVector(id))!)))
})
afterAll(() => scratch.cleanup())

/** The index holds exactly what beforeAll put in it, and none of `ids`. */
async function expectUnchanged(ids: number[] = []): Promise<void> {
  expect(await r.count()).toBe(N)
  for (let id = 0; id < N; id++) {
    const v = await r.getVector(id)
    expect(v === null ? null : Array.from(v), `item ${id} changed`).toEqual(snapshot[id])
  }
  for (const id of ids) {
    if (Number.isInteger(id) && id >= N && id <= 0xffffffff) expect(await r.getVector(id), `id ${id} was stored`).toBeNull()
  }
  const list = await db.indexes()
  expect(list.find((x) => x.index === 1)).toEqual({ index: 1, dimensions: D, metric: 'euclidean', quantization: 'none', items: N })
  // index 2 is made by the 'build options' tests; no other index may appear
  for (const x of list) expect([1, 2], `unexpected index ${x.index}`).toContain(x.index)
}

const vec = (x = 1) => new Float32Array(D).fill(x)

describe('addItems', () => {
  const cases: Array<[string, () => Promise<unknown>, number[]]> = [
    ['ids is a string', () => w.addItems('abc' as Any, vec()), []],
    ['ids is a plain object', () => w.addItems({ length: 1, 0: 100 } as Any, vec()), [100]],
    ['vectors is a string', () => w.addItems([100], 'abcd' as Any), [100]],
    ['vectors is null', () => w.addItems([100], null as Any), [100]],
    ['a negative id', () => w.addItems([100, -1], new Float32Array(2 * D)), [100]],
    ['a fractional id', () => w.addItems([100, 1.5], new Float32Array(2 * D)), [100]],
    ['an id of 2^32', () => w.addItems([100, 2 ** 32], new Float32Array(2 * D)), [100]],
    ['an id NaN', () => w.addItems([100, NaN], new Float32Array(2 * D)), [100]],
    ['an id as string', () => w.addItems([100, '101' as Any], new Float32Array(2 * D)), [100, 101]],
    ['a batch one row too long', () => w.addItems([100, 101], new Float32Array(3 * D)), [100, 101]],
    ['a batch one component short', () => w.addItems([100, 101], new Float32Array(2 * D - 1)), [100, 101]],
    ['a batch with no ids but vectors', () => w.addItems([], new Float32Array(D)), []],
    [
      'NaN in the last row',
      () => w.addItems([100, 101, 102], new Float32Array([...vec(), ...vec(), 1, NaN, 1, 1])),
      [100, 101, 102],
    ],
    [
      'Infinity in the middle row',
      () => w.addItems([100, 101, 102], new Float32Array([...vec(), 1, Infinity, 1, 1, ...vec()])),
      [100, 101, 102],
    ],
    ['-Infinity in the first row', () => w.addItems([100, 101], new Float32Array([-Infinity, 0, 0, 0, ...vec()])), [100, 101]],
    [
      'a valid existing id next to a bad row (no partial overwrite)',
      () => w.addItems([0, 100], new Float32Array([9, 9, 9, 9, NaN, 0, 0, 0])),
      [100],
    ],
  ]
  for (const [name, call, ids] of cases) {
    it(`rejects ${name}, storing nothing`, async () => {
      await expectCode(call, INVALID, name)
      await expectUnchanged(ids)
    })
  }
})

describe('addItem', () => {
  const cases: Array<[string, () => Promise<unknown>, number[]]> = [
    ['id as string', () => w.addItem('100' as Any, vec()), [100]],
    ['a negative id', () => w.addItem(-1, vec()), []],
    ['a fractional id', () => w.addItem(100.5, vec()), [100]],
    ['an id of 2^32', () => w.addItem(2 ** 32, vec()), []],
    ['an id of 2^53', () => w.addItem(2 ** 53, vec()), []],
    ['an id NaN', () => w.addItem(NaN, vec()), []],
    ['an id Infinity', () => w.addItem(Infinity, vec()), []],
    ['the vector as string', () => w.addItem(100, 'abcd' as Any), [100]],
    ['the vector missing', () => (w.addItem as Any)(100), [100]],
    ['the vector as an object', () => w.addItem(100, { 0: 1, 1: 2, 2: 3, 3: 4, length: 4 } as Any), [100]],
    ['a string component', () => w.addItem(100, [1, 2, 'x', 4] as Any), [100]],
    ['a NaN component (number[])', () => w.addItem(100, [1, NaN, 3, 4]), [100]],
    ['a NaN component (Float32Array)', () => w.addItem(100, new Float32Array([1, 2, 3, NaN])), [100]],
    ['an Infinity component', () => w.addItem(100, [Infinity, 2, 3, 4]), [100]],
    ['a -Infinity component', () => w.addItem(100, new Float32Array([1, 2, -Infinity, 4])), [100]],
    ['a NaN over an existing id', () => w.addItem(3, [NaN, 0, 0, 0]), []],
  ]
  for (const [name, call, ids] of cases) {
    it(`rejects ${name}, storing nothing`, async () => {
      await expectCode(call, INVALID, name)
      await expectUnchanged(ids)
    })
  }

  it('a vector of the wrong length: DIMENSION_MISMATCH, storing nothing', async () => {
    await expectCode(() => w.addItem(100, new Float32Array(D + 1)), 'ERR_HANNOY_DIMENSION_MISMATCH')
    await expectCode(() => w.addItem(0, [1, 2]), 'ERR_HANNOY_DIMENSION_MISMATCH')
    await expectUnchanged([100])
  })
})

describe('deleteItems', () => {
  const cases: Array<[string, () => Promise<unknown>]> = [
    ['ids as a string', () => w.deleteItems('0' as Any)],
    ['ids missing', () => (w.deleteItems as Any)()],
    ['a negative id next to a valid one', () => w.deleteItems([0, -1])],
    ['a fractional id next to a valid one', () => w.deleteItems([1, 1.5])],
    ['an id of 2^32 next to a valid one', () => w.deleteItems([2, 2 ** 32])],
    ['a NaN id next to a valid one', () => w.deleteItems([3, NaN])],
    ['a string id next to a valid one', () => w.deleteItems([4, '5' as Any])],
  ]
  for (const [name, call] of cases) {
    it(`rejects ${name}, deleting nothing`, async () => {
      await expectCode(call, INVALID, name)
      await expectUnchanged()
    })
  }
})

describe('build options', () => {
  // a separate index with items never built: a rejected build must leave it unbuilt
  let w2: ReturnType<Database['writer']>
  beforeAll(async () => {
    w2 = db.writer(2, { dimensions: D, metric: 'euclidean' })
    await w2.addItems(range(0, 20), randomVectors(20, D, 2))
  })

  const cases: Array<[string, () => Parameters<ReturnType<Database['writer']>['build']>[0]]> = [
    ['m = 0', () => ({ m: 0 })],
    ['m negative', () => ({ m: -4 })],
    ['m fractional', () => ({ m: 2.5 })],
    ['m as string', () => ({ m: '16' as Any })],
    ['m NaN', () => ({ m: NaN })],
    ['m0 = 0', () => ({ m0: 0 })],
    ['efConstruction = 0', () => ({ efConstruction: 0 })],
    ['efConstruction fractional', () => ({ efConstruction: 10.5 })],
    ['onProgress not a function', () => ({ onProgress: 5 as Any })],
  ]
  for (const [name, opts] of cases) {
    it(`rejects ${name}; the index stays unbuilt`, async () => {
      await expectCode(() => w2.build(opts()), INVALID, name)
      await expectCode(() => db.reader(2), 'ERR_HANNOY_NEEDS_BUILD', `after ${name}`)
    })
  }

  it('options as a string are rejected', async () => {
    await expectCode(() => w2.build('fast' as Any), INVALID)
    await expectCode(() => db.reader(2), 'ERR_HANNOY_NEEDS_BUILD')
  })
})

describe('search, searchBatch, searchById, getVector', () => {
  const q = () => new Float32Array([0.1, 0.2, 0.3, 0.4])
  const cases: Array<[string, () => Promise<unknown>]> = [
    ['search: query as string', () => r.search('abcd' as Any)],
    ['search: query missing', () => (r.search as Any)()],
    ['search: a string component', () => r.search([1, 2, 'x', 4] as Any)],
    ['search: a NaN component', () => r.search([1, NaN, 3, 4])],
    ['search: an Infinity component', () => r.search(new Float32Array([1, 2, 3, Infinity]))],
    ['search: k = 0', () => r.search(q(), { k: 0 })],
    ['search: k negative', () => r.search(q(), { k: -1 })],
    ['search: k fractional', () => r.search(q(), { k: 2.5 })],
    ['search: k NaN', () => r.search(q(), { k: NaN })],
    ['search: k as string', () => r.search(q(), { k: '10' as Any })],
    ['search: ef = 0', () => r.search(q(), { ef: 0 })],
    ['search: ef negative', () => r.search(q(), { ef: -5 })],
    ['search: ef fractional', () => r.search(q(), { ef: 12.5 })],
    ['search: filter as string', () => r.search(q(), { filter: 'abc' as Any })],
    ['search: filter with a negative id', () => r.search(q(), { filter: [1, -1] })],
    ['search: filter with a fractional id', () => r.search(q(), { filter: [1, 1.5] })],
    ['search: filter with an id of 2^32', () => r.search(q(), { filter: [1, 2 ** 32] })],
    ['searchBatch: queries as string', () => r.searchBatch('abcd' as Any)],
    ['searchBatch: queries as nested arrays', () => r.searchBatch([[1, 2, 3, 4]] as Any)],
    ['searchBatch: a NaN component', () => r.searchBatch(new Float32Array([1, 2, 3, 4, 5, NaN, 7, 8]))],
    ['searchBatch: k = 0', () => r.searchBatch(new Float32Array(2 * D), { k: 0 })],
    ['searchBatch: ef = 0', () => r.searchBatch(new Float32Array(2 * D), { ef: 0 })],
    ['searchBatch: filter with a negative id', () => r.searchBatch(new Float32Array(D), { filter: [-1] })],
    ['searchById: negative id', () => r.searchById(-1)],
    ['searchById: fractional id', () => r.searchById(1.5)],
    ['searchById: id of 2^32', () => r.searchById(2 ** 32)],
    ['searchById: id as string', () => r.searchById('1' as Any)],
    ['searchById: k = 0', () => r.searchById(1, { k: 0 })],
    ['searchById: ef fractional', () => r.searchById(1, { ef: 1.5 })],
    ['getVector: negative id', () => r.getVector(-1)],
    ['getVector: fractional id', () => r.getVector(0.5)],
    ['getVector: id of 2^32', () => r.getVector(2 ** 32)],
    ['getVector: id as string', () => r.getVector('1' as Any)],
  ]
  for (const [name, call] of cases) {
    it(`rejects ${name}`, async () => {
      await expectCode(call, INVALID, name)
    })
  }

  it('searchBatch: a batch whose length is not a multiple of the dimensions', async () => {
    // "a batch whose length is not count × dimensions" is INVALID_ARGUMENT; a binding may also see it
    // as a query of the wrong length
    await expectOneOfCodes(() => r.searchBatch(new Float32Array(2 * D + 1)), [INVALID, 'ERR_HANNOY_DIMENSION_MISMATCH'])
    await expectOneOfCodes(() => r.searchBatch(new Float32Array(D - 1)), [INVALID, 'ERR_HANNOY_DIMENSION_MISMATCH'])
  })

  it('the reader still works after all those rejections', async () => {
    const hits = await r.search(q(), { k: 3 })
    expect(hits.length).toBe(3)
  })
})

describe('index ids, dimensions, metric (db.writer / db.reader)', () => {
  const badIndexes: Array<[string, Any]> = [
    ['-1', -1],
    ['65536', 65536],
    ['1.5', 1.5],
    ['NaN', NaN],
    ['2^32', 2 ** 32],
    ["'1'", '1'],
  ]
  for (const [name, index] of badIndexes) {
    it(`writer(${name}) throws and reader(${name}) rejects`, async () => {
      expectThrowCode(() => db.writer(index, { dimensions: D, metric: 'euclidean' }), INVALID, `writer(${name})`)
      await expectCode(() => db.reader(index), INVALID, `reader(${name})`)
      await expectUnchanged()
    })
  }

  const badOptions: Array<[string, Any]> = [
    ['dimensions 0', { dimensions: 0 }],
    ['dimensions negative', { dimensions: -3 }],
    ['dimensions fractional', { dimensions: 2.5 }],
    ['dimensions as string', { dimensions: '4' }],
    ['dimensions missing', {}],
    ['options missing', undefined],
    ["metric 'foo'", { dimensions: 4, metric: 'foo' }],
    ["metric 'EUCLIDEAN'", { dimensions: 4, metric: 'EUCLIDEAN' }],
    ['metric as a number', { dimensions: 4, metric: 1 }],
  ]
  for (const [name, opts] of badOptions) {
    it(`writer() with ${name} throws INVALID_ARGUMENT and creates nothing`, async () => {
      expectThrowCode(() => db.writer(7, opts), INVALID, name)
      await expectUnchanged()
    })
  }
})

describe('Database.open arguments', () => {
  it('a path that is not a string', async () => {
    await expectCode(() => Database.open(42 as Any), INVALID)
  })
  it('a mapSize that is not a number', async () => {
    await expectCode(() => Database.open(scratch.dir(), { mapSize: 'big' as Any }), INVALID)
  })
  it('a readOnly that is not a boolean', async () => {
    await expectCode(() => Database.open(scratch.dir(), { readOnly: 'yes' as Any }), INVALID)
  })
})
