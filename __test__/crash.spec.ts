// Crash safety: a process killed with SIGKILL in the middle of a build leaves the last committed
// state intact and searchable; the items it had added (committed before the build) are built by the
// next build.
import { afterEach, describe, expect, it } from 'vitest'
import { Database } from '../index.js'
import { Child } from './child'
import { Scratch, fillAndBuild, randomVectors, row } from './helpers'

const scratch = new Scratch()
const children: Child[] = []
afterEach(async () => {
  for (const c of children.splice(0)) {
    c.kill('SIGKILL')
    await c.exited
  }
  await scratch.cleanup()
})

describe('SIGKILL during a build', () => {
  it('the last committed state survives; the next build inserts what the killed process had added', async () => {
    const dir = scratch.dir()
    const d = 32
    const base = 1000
    const added = 20_000
    const data = randomVectors(base, d, 1)
    const queries = randomVectors(6, d, 2)

    // committed, built state
    const db = await Database.open(dir)
    const { reader } = await fillAndBuild(db, 0, 'euclidean', d, data)
    const before = await Promise.all(Array.from({ length: 6 }, (_, q) => reader.search(row(queries, q, d), { k: 10, ef: 64 })))
    await db.close()

    // a child adds 20k items (committed) and starts building them; kill it at its first progress call
    const child = new Child('writer-child.mjs', [dir, '0', String(base), String(added), String(d), '77'])
    children.push(child)
    const addedMsg = await child.next('added', 60_000)
    await child.next('progress', 60_000)
    child.kill('SIGKILL')
    const exit = await child.exited
    expect(exit.signal).toBe('SIGKILL')
    expect(child.has('built'), 'inconclusive: the child finished its build before it was killed').toBe(false)

    // reopen: intact and searchable
    const db2 = scratch.track(await Database.open(dir))
    expect(await db2.indexes()).toEqual([{ index: 0, dimensions: d, metric: 'euclidean', quantization: 'none', items: base + added }])
    const r = await db2.reader(0)
    expect(await r.count()).toBe(base + added)
    for (let q = 0; q < 6; q++) {
      expect(await r.search(row(queries, q, d), { k: 10, ef: 64 })).toEqual(before[q])
    }
    expect(Array.from((await r.getVector(17))!)).toEqual(Array.from(row(data, 17, d)))
    const sampleId = addedMsg.sampleId as number
    const sample = Float32Array.from(addedMsg.sample as number[])
    expect(Array.from((await r.getVector(sampleId))!)).toEqual(Array.from(sample))
    // not built yet: not returned
    expect((await r.search(sample, { k: 10, ef: 64 })).map((h) => h.id)).not.toContain(sampleId)

    // the write lock left by the dead process is usable: build inserts exactly what the child added
    const w = db2.writer(0, { dimensions: d, metric: 'euclidean' })
    const res = await w.build()
    expect(res.inserted).toBe(added)
    expect(res.items).toBe(base + added)
    // ef of the item count: an exhaustive walk, so the sample's own vector finds it
    const hits = await r.search(sample, { k: 1, ef: res.items })
    expect(hits[0].id).toBe(sampleId)
    expect(hits[0].distance).toBeLessThanOrEqual(1e-5)
    // and further writes work
    await w.addItem(5_000_000, sample)
    expect(await r.count()).toBe(base + added + 1)
  })
})
