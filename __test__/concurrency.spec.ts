// Concurrency: several Readers in one process, and readers in other processes, keep answering while
// a writer adds and builds; each commit is seen at the next call; a writer waiting for another
// process's write lock does not hold up reads.
import { afterAll, afterEach, describe, expect, it, onTestFinished } from 'vitest'
import { Database } from '../index.js'
import * as path from 'node:path'
import { Child, runNode, type Msg } from './child'
import { FIXTURES, Scratch, fillAndBuild, randomVectors, range, row, sleep, waitFor } from './helpers'

const scratch = new Scratch()
const children: Child[] = []
afterEach(async () => {
  for (const c of children.splice(0)) {
    c.kill('SIGKILL')
    await c.exited
  }
  await scratch.cleanup()
})
afterAll(() => scratch.cleanup())

interface ReaderStats {
  ok: number
  fail: number
  errors: unknown[]
  lastCount: number
  maxCount: number
  countWentDown: boolean
  lastTop: number
  unsorted: number
  readersOpened: number
}

async function stats(c: Child): Promise<ReaderStats> {
  const m: Msg = await c.ask('stats', 'stats')
  return m.stats as ReaderStats
}

describe('in one process', () => {
  it('several Readers search in a loop while a writer adds and builds; each build is seen by the next call', async () => {
    const db = scratch.track(await Database.open(scratch.dir()))
    const d = 16
    const { writer } = await fillAndBuild(db, 0, 'euclidean', d, randomVectors(2000, d, 1))
    const readers = await Promise.all([db.reader(0), db.reader(0), db.reader(0), db.reader()])
    const st = readers.map(() => ({ ok: 0, fail: 0, errors: [] as string[] }))
    let stop = false
    onTestFinished(() => {
      stop = true // also when the test fails or times out
    })
    const queries = randomVectors(50, d, 2)
    const loops = readers.map((r, i) =>
      (async () => {
        let j = 0
        while (!stop) {
          try {
            const hits = await r.search(row(queries, j++ % 50, d), { k: 10, ef: 32 })
            if (hits.length !== 10) throw new Error(`got ${hits.length} hits`)
            await r.count()
            st[i].ok++
          } catch (e) {
            st[i].fail++
            if (st[i].errors.length < 5) st[i].errors.push(String(e))
          }
          await new Promise((res) => setImmediate(res))
        }
      })(),
    )

    let expected = 2000
    try {
      for (let round = 0; round < 3; round++) {
        const probe = randomVectors(1, d, 100 + round)
        const probeId = 900_000 + round
        await writer.addItems(range(10_000 + round * 3000, 3000), randomVectors(3000, d, 200 + round))
        await writer.addItem(probeId, probe)
        expected += 3001
        const res = await writer.build()
        expect(res.items).toBe(expected)
        for (const r of readers) {
          expect(await r.count()).toBe(expected)
          // An exact scan of its id: the new item is in what every reader sees.
          const [top] = await r.search(probe, { k: 1, filter: [probeId] })
          expect(top?.id).toBe(probeId)
        }
      }
    } finally {
      stop = true
      await Promise.all(loops)
    }
    for (const s of st) {
      expect(s.fail, JSON.stringify(s.errors)).toBe(0)
      expect(s.ok).toBeGreaterThan(0)
    }
  })

  for (const readThreads of ['', '1']) {
    it(`searches run on hannoy's read threads: they answer while libuv's only thread is busy${readThreads ? ' (HANNOY_READ_THREADS=1)' : ''}`, async () => {
      const file = path.join(FIXTURES, 'busy-libuv.cjs')
      const env = { UV_THREADPOOL_SIZE: '1', HANNOY_READ_THREADS: readThreads }
      const res = await runNode(file, [path.join(scratch.dir(), 'db')], { env, timeoutMs: 60_000 })
      expect(res.code, res.stderr).toBe(0)
      const out = JSON.parse(res.stdout.trim().split('\n').pop() ?? '{}')
      expect(out.ok).toBe(true)
      expect(out.selfFound, 'searches found the queried items').toBeGreaterThanOrEqual(60)
      expect(out.sameAnswers, '64 searches in flight answered as one at a time does').toBe(true)
      // 50 searches of 2,000 vectors take tens of milliseconds, the pbkdf2 about 1.5 s: searches queued
      // behind it on libuv's pool would all answer after it.
      expect(out.answeredWhileBusy, 'searches waited for libuv pool').toBe(50)
      expect(out.countWhileBusy).toBe(2000)
    })
  }

  it('after a run of awaited searches, an idle process uses no CPU (read threads stop spinning)', async () => {
    const res = await runNode(path.join(FIXTURES, 'idle-cpu.cjs'), [path.join(scratch.dir(), 'db')])
    expect(res.code, res.stderr).toBe(0)
    const out = JSON.parse(res.stdout.trim().split('\n').pop() ?? '{}')
    expect(out.found).toBeGreaterThanOrEqual(495) // items that find themselves: the searches work
    // A thread left spinning would burn the whole wait (about 500 ms of CPU).
    expect(out.idleCpuMs, `${out.idleCpuMs} ms of CPU over ${out.wallMs} ms idle`).toBeLessThan(100)
  })
})

describe('across processes', () => {
  async function twoReadersWhileWriting(opts: { mapSize?: number; perRound: number; d: number }): Promise<void> {
    const dir = scratch.dir()
    const { d, perRound } = opts
    const db = scratch.track(await Database.open(dir, opts.mapSize ? { mapSize: opts.mapSize } : undefined))
    const { writer } = await fillAndBuild(db, 0, 'euclidean', d, randomVectors(1000, d, 1))
    const probe = randomVectors(1, d, 7)
    const probeArg = JSON.stringify(Array.from(probe))
    const mapArg = String(opts.mapSize ?? 0)
    const kids = [
      new Child('reader-child.mjs', [dir, '0', probeArg, '0', mapArg]),
      new Child('reader-child.mjs', [dir, '0', probeArg, '1', mapArg]), // this one read-only
    ]
    children.push(...kids)
    await Promise.all(kids.map((c) => c.next('ready', 60_000)))

    let expected = 1000
    const okBefore = await Promise.all(kids.map(stats))
    for (let round = 0; round < 3; round++) {
      await writer.addItems(range(10_000 + round * perRound, perRound), randomVectors(perRound, d, 10 + round))
      expected += perRound
      if (round === 2) {
        await writer.addItem(999_999, probe)
        expected += 1
      }
      const res = await writer.build()
      expect(res.items).toBe(expected)
    }
    const okAfter = await Promise.all(kids.map(stats))
    kids.forEach((_, i) => expect(okAfter[i].ok, 'the child did not search while the parent wrote').toBeGreaterThan(okBefore[i].ok))

    // The probe item is in the final state (an exact scan of its id)...
    const final = await db.reader(0)
    expect((await final.search(probe, { k: 1, filter: [999_999] }))[0]?.id).toBe(999_999)
    // ...and each child, at its next calls, sees that state: its count, and the top hit this
    // process gets for the same search (the walk is approximate: on a rare build the probe's
    // own vector does not lead to it at ef 32; both processes read the same commit).
    const want = (await final.search(probe, { k: 10, ef: 32 }))[0].id
    for (const c of kids) {
      let last: ReaderStats | undefined
      const seen = await waitFor(
        async () => {
          last = await stats(c)
          return last.lastCount === expected && last.lastTop === want
        },
        30_000,
        100,
      )
      expect(seen, `child never saw the new state: ${JSON.stringify(last)}`).toBe(true)
    }
    const finals = await Promise.all(kids.map((c) => c.ask('stop', 'final', 30_000)))
    for (const f of finals) {
      const s = f.stats as ReaderStats
      expect(s.fail, `child errors: ${JSON.stringify(s.errors)}`).toBe(0)
      expect(s.ok).toBeGreaterThan(0)
      expect(s.countWentDown).toBe(false)
      expect(s.unsorted).toBe(0)
      expect(s.maxCount).toBe(expected)
      expect(s.readersOpened).toBeGreaterThanOrEqual(1)
    }
    const exits = await Promise.all(kids.map((c) => c.exited))
    for (const e of exits) expect(e.code).toBe(0)
  }

  it('two other processes read and search in a loop while this process adds and builds', async () => {
    await twoReadersWhileWriting({ perRound: 3000, d: 16 })
  })

  it('the same while the map grows (mapSize 1 MiB, several MiB written)', async () => {
    await twoReadersWhileWriting({ mapSize: 1 << 20, perRound: 5000, d: 32 })
  })

  it("a writer waiting for another process's write lock does not hold up reads", async () => {
    const dir = scratch.dir()
    const db = scratch.track(await Database.open(dir))
    const d = 16
    const data = randomVectors(1000, d, 3)
    const { reader } = await fillAndBuild(db, 0, 'euclidean', d, data)

    // the child adds 30k items to index 5 and builds them: one long write transaction
    const child = new Child('writer-child.mjs', [dir, '5', '0', '30000', '32', '11'])
    children.push(child)
    await child.next('added', 60_000)
    await child.next('progress', 60_000)
    expect(child.has('built'), 'inconclusive: the child finished its build before the test could start').toBe(false)

    // more writes than libuv has pool threads (4 by default), each on its own Writer
    let writesDone = 0
    const writes = Array.from({ length: 8 }, (_, i) =>
      db
        .writer(100 + i, { dimensions: 4, metric: 'euclidean' })
        .addItem(1, [i, 0, 0, 0])
        .then(() => {
          writesDone++
        }),
    )
    await sleep(20)
    // reads of every kind, more than the pool has threads
    const reads: Array<Promise<unknown>> = []
    for (let i = 0; i < 8; i++) {
      // ef of the item count: the walk is exhaustive, so an item's own vector finds it first
      reads.push(reader.search(row(data, i, d), { k: 5, ef: 1000 }))
      reads.push(reader.getVector(i))
      reads.push(reader.count())
    }
    reads.push(reader.searchBatch(data.subarray(0, 50 * d), { k: 5 }))
    reads.push(reader.searchById(3, { k: 5 }))
    reads.push(db.indexes())
    reads.push(db.reader(0))
    const results = await Promise.all(reads)
    const childStillBuilding = !child.has('built')
    expect((results[0] as Array<{ id: number }>)[0].id).toBe(0)
    // the writes cannot commit while the child holds the lock, so if any write finished before the
    // reads did, the reads were queued behind writes parked on the lock
    expect(
      writesDone,
      `reads completed only after ${writesDone} writes (child still building: ${childStillBuilding})`,
    ).toBe(0)

    // once the child commits, the waiting writes go through
    await Promise.all(writes)
    expect(writesDone).toBe(8)
    const built = await child.next('built', 120_000)
    expect((built.result as { inserted: number }).inserted).toBe(30_000)
    const list = await db.indexes()
    expect(list.find((x) => x.index === 5)?.items).toBe(30_000)
    for (let i = 0; i < 8; i++) expect(list.find((x) => x.index === 100 + i)?.items).toBe(1)
    const exit = await child.exited
    expect(exit.code).toBe(0)
  })

  it("opening the directory in another process does not wait for a build's write lock", async (ctx) => {
    const dir = scratch.dir()
    const db = scratch.track(await Database.open(dir))
    await fillAndBuild(db, 0, 'euclidean', 16, randomVectors(500, 16, 4))

    // a build long enough (seconds) to hold LMDB's write lock while another process starts
    const child = new Child('writer-child.mjs', [dir, '5', '0', '60000', '32', '12'])
    children.push(child)
    await child.next('added', 60_000)
    await child.next('progress', 60_000)
    const spawnAt = Date.now()
    if (child.has('built')) return ctx.skip() // inconclusive: the build was over already

    // A new process opens the directory for writing and reads while the child still builds.
    const opened = await runNode(path.join(__dirname, 'fixtures', 'open-child.mjs'), [dir], { timeoutMs: 120_000 })
    expect(opened.code, opened.stderr).toBe(0)
    const out = JSON.parse(opened.stdout.trim().split('\n').pop() as string) as { ok: boolean; count: number; openedAt: number }
    expect(out).toMatchObject({ ok: true, count: 500 })
    const built = await child.next('built', 120_000)
    const builtAt = built.at as number
    // Inconclusive when the build ended less than a second after the other process started: that
    // process may not even have reached its open by then.
    if (builtAt - spawnAt < 1000) return ctx.skip()
    expect(out.openedAt, 'the open returned only when the build committed').toBeLessThan(builtAt - 100)
  })
})
