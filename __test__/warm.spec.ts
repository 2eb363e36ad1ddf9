// Cold starts: reader({ prefetch }), HANNOY_READER_PREFETCH_MEMORY and reader.warm(): budgets,
// bad values, the same answers with and without, AbortSignal.
import * as path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { Database } from '../index.js'
import { runNode } from './child'
import { ROOT, Scratch, expectAbort, expectCode, fillAndBuild, randomVectors, row } from './helpers'

const scratch = new Scratch()
afterEach(() => scratch.cleanup())

const D = 24
const N = 3000

async function built(quantization: 'none' | 'binary' = 'none'): Promise<string> {
  const dir = scratch.dir()
  const db = await Database.open(dir)
  const w = db.writer(0, { dimensions: D, metric: 'euclidean', quantization })
  await w.addItems(
    Uint32Array.from({ length: N }, (_, i) => i),
    randomVectors(N, D, 5),
  )
  await w.build()
  await db.close()
  return dir
}

describe('warm() and prefetch', () => {
  it.each(['none', 'binary'] as const)('%s: budgets of 0, less than a page and more than the index; answers unchanged', async (q) => {
    const dir = await built(q)
    const queries = randomVectors(5, D, 6)
    const answers = async (db: Database, options?: { prefetch?: number }) => {
      const reader = await db.reader(0, options)
      return Promise.all([0, 1, 2, 3, 4].map((i) => reader.search(row(queries, i, D), { k: 10 })))
    }
    const plain = scratch.track(await Database.open(dir, { readOnly: true }))
    const before = await answers(plain)
    await plain.close()
    const db = scratch.track(await Database.open(dir, { readOnly: true }))
    expect(await answers(db, { prefetch: 1 << 20 })).toEqual(before)
    const reader = await db.reader(0, { prefetch: 0 })
    expect(await reader.warm({ bytes: 0 })).toMatchObject({ bytes: 0, nodes: 0 })
    expect(await reader.warm({ bytes: 100 })).toMatchObject({ bytes: 0, nodes: 0 })
    const all = await reader.warm()
    expect(all.nodes).toBe(N)
    expect(all.seconds).toBeGreaterThanOrEqual(0)
    expect(await reader.warm({ bytes: 2 ** 53 })).toEqual({ ...all, seconds: expect.any(Number) })
    // a little less than the whole index: the upper levels, then most of level 0
    const less = all.bytes - 8 * 4096
    const some = await reader.warm({ bytes: less })
    expect(some.bytes).toBeLessThanOrEqual(less)
    expect(some.bytes % 4096).toBe(0)
    expect(some.nodes).toBeLessThan(N)
    // (in this small index the upper levels' nodes already sit on most pages of a binary
    // index's codes, so only the unquantized one is sure to reach level 0 within that budget)
    if (q === 'none') expect(some.nodes).toBeGreaterThan(0)
    expect(await answers(db)).toEqual(before)
  })

  it('bad budgets get ERR_HANNOY_INVALID_ARGUMENT; an aborted signal rejects with AbortError', async () => {
    const dir = await built()
    const db = scratch.track(await Database.open(dir))
    for (const prefetch of [-1, Number.NaN, 1.5, '1000', Infinity]) {
      await expectCode(() => db.reader(0, { prefetch: prefetch as number }), 'ERR_HANNOY_INVALID_ARGUMENT', String(prefetch))
    }
    await expectCode(() => db.reader(0, 'x' as unknown as { prefetch?: number }), 'ERR_HANNOY_INVALID_ARGUMENT')
    const reader = await db.reader(0)
    for (const bytes of [-1, Number.NaN, 'all']) {
      await expectCode(() => reader.warm({ bytes: bytes as number }), 'ERR_HANNOY_INVALID_ARGUMENT', String(bytes))
    }
    await expectCode(() => reader.warm({ signal: 'no' as unknown as AbortSignal }), 'ERR_HANNOY_INVALID_ARGUMENT')
    await expectAbort(() => reader.warm({ signal: AbortSignal.abort() }))
    // a signal that is never aborted changes nothing
    expect((await reader.warm({ signal: new AbortController().signal })).nodes).toBe(N)
    await db.close()
    await expectCode(() => reader.warm(), 'ERR_HANNOY_CLOSED')
  })

  it('HANNOY_READER_PREFETCH_MEMORY: a byte count is used; anything else is ignored with a warning', async () => {
    const dir = await built()
    const script = path.join(scratch.dir(), 'prefetch.cjs')
    require('node:fs').writeFileSync(
      script,
      `const { Database } = require(${JSON.stringify(path.join(ROOT, 'index.js'))})
       ;(async () => {
         const db = await Database.open(${JSON.stringify(dir)}, { readOnly: true })
         const r1 = await db.reader(0)
         const r2 = await db.reader(0)
         const hits = await r1.search(new Float32Array(${D}).fill(0.1), { k: 3 })
         console.log(JSON.stringify(hits.length) + ' ' + (await r2.count()))
         await db.close()
       })().catch((e) => { console.error('failed', e.code, e.message); process.exit(1) })`,
    )
    for (const [value, warns] of [
      ['1048576', false],
      ['lots', true],
      ['-5', true],
    ] as const) {
      const run = await runNode(script, [], { env: { HANNOY_READER_PREFETCH_MEMORY: value } })
      expect(run.code, run.stderr).toBe(0)
      expect(run.stdout.trim()).toBe(`3 ${N}`)
      const warnings = run.stderr.split('HANNOY_READER_PREFETCH_MEMORY').length - 1
      expect(warnings, `${value}: ${run.stderr}`).toBe(warns ? 1 : 0)
    }
  })
})
