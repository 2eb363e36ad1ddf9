// AbortSignal on build and search (rollback), and onProgress (called, bounded, throttled, final call).
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { getEventListeners } from 'node:events'
import { Database } from '../index.js'
import { Scratch, expectAbort, fillAndBuild, randomVectors, range, row, sleep } from './helpers'

const scratch = new Scratch()
afterAll(() => scratch.cleanup())

interface Progress {
  phase: string
  done: number
  total: number
}

function checkProgress(calls: Progress[]): void {
  expect(calls.length, 'onProgress was never called').toBeGreaterThanOrEqual(1)
  for (const p of calls) {
    expect(typeof p.phase).toBe('string')
    expect(p.phase.length).toBeGreaterThan(0)
    expect(Number.isInteger(p.done) && p.done >= 0, `done ${p.done}`).toBe(true)
    expect(Number.isInteger(p.total) && p.total >= 0, `total ${p.total}`).toBe(true)
    expect(p.done, `${p.phase}: done ${p.done} > total ${p.total}`).toBeLessThanOrEqual(p.total)
  }
  const last = calls[calls.length - 1]
  expect(last.done, `final call ${JSON.stringify(last)}`).toBe(last.total)
  const inserts = calls.filter((p) => p.phase === 'insert')
  if (inserts.length > 0) {
    const l = inserts[inserts.length - 1]
    expect(l.done, `last insert call ${JSON.stringify(l)}`).toBe(l.total)
  }
}

describe('build: AbortSignal and onProgress', () => {
  const d = 32
  const base = 2000
  const extra = 30_000
  let db: Database
  beforeAll(async () => {
    db = scratch.track(await Database.open(scratch.dir()))
  })

  it('aborting mid-build rejects with AbortError and leaves the index exactly as it was; the next build works', async () => {
    const data = randomVectors(base, d, 1)
    const { writer, reader } = await fillAndBuild(db, 1, 'euclidean', d, data)
    // pending changes: 30k new items and 10 deletes
    const more = randomVectors(extra, d, 2)
    await writer.addItems(range(100_000, extra), more)
    expect(await writer.deleteItems(range(0, 10))).toBe(10)

    const queries = randomVectors(8, d, 3)
    const before = await Promise.all(Array.from({ length: 8 }, (_, q) => reader.search(row(queries, q, d), { k: 10, ef: 64 })))
    for (const hits of before) for (const h of hits) expect(h.id).toBeGreaterThanOrEqual(10)
    for (const hits of before) for (const h of hits) expect(h.id).toBeLessThan(base)
    const countBefore = await reader.count()
    expect(countBefore).toBe(base - 10 + extra)
    const listBefore = await db.indexes()

    const ac = new AbortController()
    const calls: Progress[] = []
    const fallback = setTimeout(() => ac.abort(), 300)
    await expectAbort(async () => {
      await writer.build({
        signal: ac.signal,
        onProgress: (p) => {
          calls.push({ ...p })
          if (!ac.signal.aborted) ac.abort()
        },
      })
    }, `build of ${extra} items aborted at its first progress call (if it resolved, the build finished before the abort was seen)`)
    clearTimeout(fallback)

    // exactly as before: same count, same list, same answers (new items still not searchable)
    expect(await reader.count()).toBe(countBefore)
    expect(await db.indexes()).toEqual(listBefore)
    for (let q = 0; q < 8; q++) {
      expect(await reader.search(row(queries, q, d), { k: 10, ef: 64 })).toEqual(before[q])
    }
    // a fresh reader sees the same
    const r2 = await db.reader(1)
    expect(await r2.search(row(queries, 0, d), { k: 10, ef: 64 })).toEqual(before[0])

    // the following build without a signal does the whole work, with progress, throttled
    const progress: Progress[] = []
    const t0 = performance.now()
    const res = await writer.build({ onProgress: (p) => progress.push({ ...p }) })
    const seconds = (performance.now() - t0) / 1000
    await sleep(50) // let any queued progress call arrive
    expect(res.inserted).toBe(extra)
    expect(res.deleted).toBe(10)
    expect(res.items).toBe(base - 10 + extra)
    expect(await reader.count()).toBe(base - 10 + extra)
    checkProgress(progress)
    const phases = new Set(progress.map((p) => p.phase))
    const limit = Math.ceil(seconds * 10) + 2 * phases.size + 3
    expect(progress.length, `${progress.length} progress calls in ${seconds.toFixed(2)} s (phases ${[...phases]})`).toBeLessThanOrEqual(limit)

    // the new items are searchable now (ef of the item count: the walk is exhaustive, so the
    // item's own vector finds it whatever this build's graph)
    const hits = await reader.search(row(more, 123, d), { k: 1, ef: res.items })
    expect(hits[0].id).toBe(100_123)
    expect(hits[0].distance).toBeLessThanOrEqual(1e-5)
  })

  it('an already-aborted signal rejects at once and changes nothing', async () => {
    const data = randomVectors(300, 8, 4)
    const { writer, reader } = await fillAndBuild(db, 2, 'cosine', 8, data)
    await writer.addItem(5000, row(data, 0, 8))
    const q = row(data, 0, 8)
    const before = await reader.search(q, { k: 5 })
    expect(before.map((h) => h.id)).not.toContain(5000)

    const ac = new AbortController()
    ac.abort()
    let progressCalls = 0
    await expectAbort(() => writer.build({ signal: ac.signal, onProgress: () => progressCalls++ }), 'build with an aborted signal')
    expect(await reader.count()).toBe(301)
    expect(await reader.search(q, { k: 5 })).toEqual(before)

    // AbortSignal.abort() made signals work too
    await expectAbort(() => writer.build({ signal: AbortSignal.abort() }), 'AbortSignal.abort()')
    expect(await reader.search(q, { k: 5 })).toEqual(before)

    const res = await writer.build({ signal: new AbortController().signal })
    expect(res.inserted).toBe(1)
    // ef of the item count: an exhaustive walk, so both copies of the vector are found
    const after = await reader.search(q, { k: 2, ef: res.items })
    expect(new Set(after.map((h) => h.id))).toEqual(new Set([0, 5000]))
  })

  it('aborting after the build resolved has no effect', async () => {
    const w = db.writer(3, { dimensions: 4, metric: 'euclidean' })
    await w.addItems(range(0, 50), randomVectors(50, 4, 5))
    const ac = new AbortController()
    const res = await w.build({ signal: ac.signal })
    ac.abort()
    await sleep(20)
    expect(res.items).toBe(50)
    expect(await (await db.reader(3)).count()).toBe(50)
    expect((await (await db.reader(3)).search([0, 0, 0, 0], { k: 3 })).length).toBe(3)
  })

  it('onProgress on a small build: called at least once, done <= total, final call done === total', async () => {
    const w = db.writer(4, { dimensions: 8, metric: 'manhattan' })
    await w.addItems(range(0, 500), randomVectors(500, 8, 6))
    const calls: Progress[] = []
    const res = await w.build({ onProgress: (p) => calls.push({ ...p }) })
    await sleep(50)
    expect(res.inserted).toBe(500)
    checkProgress(calls)
  })
})

describe('search: AbortSignal', () => {
  it('an already-aborted signal rejects with AbortError; a live one does not get in the way', async () => {
    const db = scratch.track(await Database.open(scratch.dir()))
    const data = randomVectors(200, 8, 7)
    const { reader } = await fillAndBuild(db, 1, 'euclidean', 8, data)
    const ac = new AbortController()
    ac.abort()
    await expectAbort(() => reader.search(row(data, 0, 8), { k: 5, signal: ac.signal }), 'search with an aborted signal')
    await expectAbort(() => reader.search(row(data, 1, 8), { signal: AbortSignal.abort() }), 'AbortSignal.abort()')

    const live = new AbortController()
    // ef 200, the item count: exhaustive walks here, so each item's own vector finds it first
    const hits = await reader.search(row(data, 2, 8), { k: 5, ef: 200, signal: live.signal })
    expect(hits[0].id).toBe(2)
    live.abort() // after the fact: nothing happens
    await sleep(10)

    // many searches, some aborted before the call: the others are unaffected
    const results = await Promise.allSettled(
      Array.from({ length: 40 }, (_, i) =>
        reader.search(row(data, i, 8), { k: 3, ef: 200, signal: i % 2 === 0 ? AbortSignal.abort() : new AbortController().signal }),
      ),
    )
    results.forEach((r, i) => {
      if (i % 2 === 0) {
        expect(r.status).toBe('rejected')
        expect((r as PromiseRejectedResult).reason.name).toBe('AbortError')
      } else {
        expect(r.status).toBe('fulfilled')
        expect((r as PromiseFulfilledResult<Array<{ id: number }>>).value[0].id).toBe(i)
      }
    })
  })

  it('a search leaves no listener on its signal, whether it answers or is rejected', async () => {
    const dir = scratch.dir()
    const db = await Database.open(dir)
    const data = randomVectors(100, 8, 9)
    const { reader } = await fillAndBuild(db, 3, 'euclidean', 8, data)
    const { signal } = new AbortController()
    const listeners = () => getEventListeners(signal, 'abort').length
    expect((await reader.search(row(data, 4, 8), { k: 1, ef: 100, signal }))[0].id).toBe(4)
    expect(listeners()).toBe(0)
    for (let i = 0; i < 3; i++) {
      await expect(reader.search(new Float32Array(3), { signal })).rejects.toMatchObject({
        code: 'ERR_HANNOY_DIMENSION_MISMATCH',
      })
      await expect(reader.search(row(data, 0, 8), { k: 0, signal })).rejects.toMatchObject({
        code: 'ERR_HANNOY_INVALID_ARGUMENT',
      })
    }
    expect(listeners(), 'rejected searches left their listener behind').toBe(0)
    await db.close()
    await expect(reader.search(row(data, 0, 8), { signal })).rejects.toMatchObject({ code: 'ERR_HANNOY_CLOSED' })
    expect(listeners(), 'a search on a closed database left its listener behind').toBe(0)
  })

  it('aborting while a search runs stops it with AbortError', async () => {
    const db = scratch.track(await Database.open(scratch.dir()))
    const d = 16
    const n = 20_000
    const data = randomVectors(n, d, 8)
    const { reader } = await fillAndBuild(db, 2, 'euclidean', d, data, { batch: 10_000 })
    // ef as large as the index: the search walks every node (milliseconds), so the abort, sent
    // right after the call, lands while it runs on the worker thread.
    const started = performance.now()
    const full = await reader.search(row(data, 0, d), { k: 10, ef: n })
    const fullMs = performance.now() - started
    expect(full[0].id).toBe(0)

    let aborted = 0
    for (let i = 0; i < 5; i++) {
      const ac = new AbortController()
      const pending = reader.search(row(data, i, d), { k: 10, ef: n, signal: ac.signal })
      setImmediate(() => ac.abort())
      try {
        await pending
      } catch (e) {
        expect((e as Error).name).toBe('AbortError')
        aborted++
      }
    }
    expect(aborted, `no search was stopped (a full search takes ${fullMs.toFixed(1)} ms)`).toBeGreaterThan(0)
  })
})
