// Damaged and truncated files are reported, never a crash; verify(), copy(), idempotent close()
// and `await using`.
import * as fs from 'node:fs'
import * as path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { Database } from '../index.js'
import { runNode } from './child'
import { FIXTURES, Scratch, expectCode, fillAndBuild, mulberry32, randomVectors, range, row } from './helpers'

const scratch = new Scratch()
afterEach(() => scratch.cleanup())

const D = 32

/** A closed source directory holding a built 3,000 × 32 cosine index 0 (and, with `quantized`,
 * a binary-quantized index 1 of 600 items). */
async function builtSource(n = 3000, quantized = false): Promise<string> {
  const dir = scratch.dir()
  const db = await Database.open(dir)
  await fillAndBuild(db, 0, 'cosine', D, randomVectors(n, D, 11))
  if (quantized) {
    const w = db.writer(1, { dimensions: D, metric: 'euclidean', quantization: 'binary' })
    await w.addItems(range(0, 600), randomVectors(600, D, 12))
    await w.build()
  }
  await db.close()
  return dir
}

function dataFile(dir: string): string {
  return path.join(dir, 'data.mdb')
}

/** A new directory holding `bytes` as its data.mdb. */
function damagedCopy(bytes: Buffer): string {
  const dir = scratch.dir()
  fs.writeFileSync(dataFile(dir), bytes)
  return dir
}

/** Page numbers of the branch pages of an LMDB file (page header: pgno u64, pad u16, flags u16). */
function branchPages(bytes: Buffer, pageSize = 4096): number[] {
  const pages: number[] = []
  for (let p = 2; (p + 1) * pageSize <= bytes.length; p++) {
    const at = p * pageSize
    if (Number(bytes.readBigUInt64LE(at)) === p && (bytes.readUInt16LE(at + 10) & 0x01) !== 0) pages.push(p)
  }
  return pages
}

interface Job {
  dir: string
  verify: boolean
  readOnly: boolean
  damage: string
  indexes?: number[]
}
interface Result {
  op: string
  ok?: boolean
  code?: string
  message?: string
}

/** Runs the jobs in child processes (one after the other in each); a child that dies is reported
 * with the job it died on, and a new child takes the rest. */
async function runJobs(jobs: Job[]): Promise<{ results: Map<string, Result[]>; deaths: string[] }> {
  const results = new Map<string, Result[]>()
  const deaths: string[] = []
  let rest = jobs
  while (rest.length > 0) {
    const file = path.join(scratch.dir(), 'jobs.json')
    fs.writeFileSync(file, JSON.stringify({ jobs: rest, d: D }))
    const run = await runNode(path.join(FIXTURES, 'damaged-child.mjs'), [file], { timeoutMs: 120_000 })
    let started: string | undefined
    for (const line of run.stdout.split('\n')) {
      if (!line.trim()) continue
      const msg = JSON.parse(line)
      if (msg.start) started = msg.start
      else {
        results.set(msg.dir, msg.results)
        started = undefined
      }
    }
    if (run.code === 0 && run.signal === null) break
    const job = rest.find((j) => j.dir === started)
    deaths.push(`${job ? job.damage : 'before any job'}: ${run.signal ?? `exit ${run.code}`} ${run.stderr.slice(0, 300)}`)
    const at = job ? rest.indexOf(job) + 1 : rest.length
    rest = rest.slice(at)
  }
  return { results, deaths }
}

describe('damaged files', () => {
  it('fuzz: truncations, random overwrites and damaged meta and branch pages never kill a process', async () => {
    const source = await builtSource(3000, true)
    const original = fs.readFileSync(dataFile(source))
    const pageSize = 4096
    const branches = branchPages(original, pageSize)
    expect(branches.length).toBeGreaterThan(0)
    const trials = Number(process.env.HANNOY_FUZZ_TRIALS ?? 48)
    const rng = mulberry32(20261201)
    const int = (n: number) => Math.floor(rng() * n)
    const jobs: Job[] = []
    for (let t = 0; t < trials; t++) {
      const bytes = Buffer.from(original)
      const kind = t % 4
      let damage: string
      let out: Buffer = bytes
      if (kind === 0) {
        const length = 1 + int(original.length - 2)
        out = bytes.subarray(0, length)
        damage = `truncated to ${length} of ${original.length} bytes`
      } else {
        const [from, span, what] =
          kind === 1
            ? [0, original.length, 'anywhere']
            : kind === 2
              ? [0, 2 * pageSize, 'in the meta pages']
              : [branches[int(branches.length)] * pageSize, 64, 'in a branch page header']
        const count = 1 + int(8)
        const at = from + int(span - count)
        for (let i = 0; i < count; i++) bytes[at + i] = int(256)
        damage = `${count} random bytes at ${at} (${what})`
      }
      const dir = damagedCopy(out)
      const readOnly = t % 8 < 4
      jobs.push({ dir, verify: true, readOnly, damage: `${damage}, verify`, indexes: [0, 1] })
      if (kind === 0) {
        // without verify too: a truncated file must never kill the process either
        const plain = damagedCopy(out)
        jobs.push({ dir: plain, verify: false, readOnly, damage: `${damage}, no verify`, indexes: [0, 1] })
      }
    }
    const { results, deaths } = await runJobs(jobs)
    expect(deaths).toEqual([])
    let rejectedOpens = 0
    for (const job of jobs) {
      const got = results.get(job.dir)
      expect(got, job.damage).toBeDefined()
      for (const r of got!) {
        if (!r.ok) expect(r.code, `${job.damage}: ${r.op}: ${r.message}`).toMatch(/^ERR_HANNOY_/)
      }
      const open = got![0]
      if (job.damage.startsWith('truncated')) {
        // every truncated file is refused at open, with a message that says so
        expect(open.code, job.damage).toBe('ERR_HANNOY_CORRUPT')
        expect(open.message, job.damage).toMatch(/truncated/)
      }
      if (!open.ok) rejectedOpens++
    }
    expect(rejectedOpens).toBeGreaterThan(trials / 4)
  })

  it('a truncated file is refused by a writable open, which leaves it as it was', async () => {
    const source = await builtSource()
    const original = fs.readFileSync(dataFile(source))
    for (const length of [0, 100, 4096 * 2 - 1, original.length - 4096, original.length - 1]) {
      const dir = damagedCopy(original.subarray(0, length))
      for (const readOnly of length === 0 ? [true] : [false, true]) {
        const e = await expectCode(() => Database.open(dir, { readOnly }), 'ERR_HANNOY_CORRUPT', `length ${length}`)
        expect(e.message).toMatch(/truncated/)
        expect(fs.statSync(dataFile(dir)).size).toBe(length)
      }
    }
    // An empty file holds nothing to lose (a crash right after LMDB created it): a writable
    // open starts a new environment there, as LMDB does.
    const empty = damagedCopy(Buffer.alloc(0))
    const db = scratch.track(await Database.open(empty))
    expect(await db.indexes()).toEqual([])
  })

  it('verify() reports an intact file and rejects damaged records with ERR_HANNOY_CORRUPT', async () => {
    const source = await builtSource()
    const db = scratch.track(await Database.open(source))
    const w = db.writer(3, { dimensions: 4, metric: 'euclidean' })
    await w.addItems([1, 2, 3], new Float32Array(12).fill(0.5))
    const report = await db.verify()
    expect(report.fileBytes).toBe(fs.statSync(dataFile(source)).size)
    expect(report.pageSize).toBeGreaterThanOrEqual(512)
    expect(report.pages * report.pageSize).toBeLessThanOrEqual(report.fileBytes)
    expect(report.pagesChecked).toBeGreaterThan(0)
    expect(report.seconds).toBeGreaterThanOrEqual(0)
    expect(report.indexes).toEqual([
      { index: 0, vectors: 3000, nodes: 3000 },
      { index: 3, vectors: 3, nodes: 0 },
    ])
    await db.close()

    // garbage link lists (written by crates/engine/examples/make_fixtures.rs)
    const corrupt = scratch.dir()
    fs.copyFileSync(path.join(FIXTURES, 'dirs', 'corrupt', 'data.mdb'), dataFile(corrupt))
    const opened = scratch.track(await Database.open(corrupt))
    const e = await expectCode(() => opened.verify(), 'ERR_HANNOY_CORRUPT')
    expect(e.message).toMatch(/index \d+/)
    await expectCode(() => Database.open(corrupt, { verify: true }), 'ERR_HANNOY_CORRUPT')
  })

  it('Database.open({ verify: true }) opens an intact file and refuses a bad verify option', async () => {
    const source = await builtSource(500)
    const db = scratch.track(await Database.open(source, { verify: true, readOnly: true }))
    expect(await (await db.reader(0)).count()).toBe(500)
    await expectCode(() => Database.open(source, { verify: 'yes' as unknown as boolean }), 'ERR_HANNOY_INVALID_ARGUMENT')
  })
})

describe('copy()', () => {
  async function answers(dir: string, queries: Float32Array): Promise<number[][]> {
    const db = await Database.open(dir, { readOnly: true })
    const reader = await db.reader(0)
    const out: number[][] = []
    for (let q = 0; q < queries.length / D; q++) {
      out.push((await reader.search(row(queries, q, D), { k: 10, ef: 200 })).map((h) => h.id))
    }
    await db.close()
    return out
  }

  it('copies every index; a compacted copy is no larger, opens, verifies and answers the same', async () => {
    const source = await builtSource()
    const db = scratch.track(await Database.open(source))
    const w = db.writer(7, { dimensions: 4, metric: 'euclidean' })
    await w.addItems([1, 2], new Float32Array(8).fill(1))
    await w.build()
    // deletions leave free pages behind, which a compacted copy drops
    await db.writer(0, { dimensions: D, metric: 'cosine' }).deleteItems(range(0, 1000))
    await db.writer(0, { dimensions: D, metric: 'cosine' }).build()
    const queries = randomVectors(8, D, 5)
    const parent = scratch.dir()
    for (const compact of [false, true]) {
      const dest = path.join(parent, `copy-${compact}`)
      await db.copy(dest, { compact })
      expect(fs.readdirSync(parent).filter((f) => f.includes('partial'))).toEqual([])
      const copy = scratch.track(await Database.open(dest, { verify: true }))
      expect(await copy.indexes()).toEqual(await db.indexes())
      await copy.close()
      expect(await answers(dest, queries)).toEqual(await answers(source, queries))
    }
    const plain = fs.statSync(dataFile(path.join(parent, 'copy-false'))).size
    const compacted = fs.statSync(dataFile(path.join(parent, 'copy-true'))).size
    expect(compacted).toBeLessThanOrEqual(fs.statSync(dataFile(source)).size)
    expect(compacted).toBeLessThan(plain)
  })

  it('a copy made during a build holds the state committed when it started', async () => {
    const dir = scratch.dir()
    const db = scratch.track(await Database.open(dir))
    const base = randomVectors(2000, D, 1)
    const { writer } = await fillAndBuild(db, 0, 'cosine', D, base)
    const queries = randomVectors(8, D, 2)
    const before = await answers(dir, queries)
    await writer.addItems(range(2000, 30_000), randomVectors(30_000, D, 3))
    let building = true
    let started!: () => void
    const inserting = new Promise<void>((resolve) => (started = resolve))
    const build = writer
      .build({ onProgress: (p) => p.phase === 'insert' && started() })
      .finally(() => (building = false))
    await inserting
    const dest = path.join(scratch.dir(), 'during')
    await db.copy(dest) // compact, the default
    const copiedDuringBuild = building
    // a plain copy waits for the build's transaction: it holds the state before or after it
    const plainDest = path.join(scratch.dir(), 'plain')
    const plain = db.copy(plainDest, { compact: false })
    await build
    await plain
    const after = await answers(dir, queries)
    expect(after).not.toEqual(before) // the build changed the answers
    if (copiedDuringBuild) expect(await answers(dest, queries)).toEqual(before)
    else console.warn('inconclusive: the build ended before the copy did')
    expect([before, after]).toContainEqual(await answers(plainDest, queries))
  })

  it('refuses a destination that exists, is inside the database, or has no parent', async () => {
    const source = await builtSource(100)
    const db = scratch.track(await Database.open(source))
    const exists = scratch.dir()
    await expectCode(() => db.copy(exists), 'ERR_HANNOY_INVALID_ARGUMENT', 'exists')
    await expectCode(() => db.copy(path.join(source, 'inside')), 'ERR_HANNOY_INVALID_ARGUMENT', 'inside')
    await expectCode(() => db.copy(path.join(exists, 'no', 'parent')), 'ERR_HANNOY_IO', 'no parent')
    await expectCode(() => db.copy(''), 'ERR_HANNOY_INVALID_ARGUMENT', 'empty')
    await expectCode(() => db.copy(42 as unknown as string), 'ERR_HANNOY_INVALID_ARGUMENT', 'not a string')
    await expectCode(
      () => db.copy(path.join(exists, 'x'), { compact: 1 as unknown as boolean }),
      'ERR_HANNOY_INVALID_ARGUMENT',
      'compact',
    )
    expect(fs.readdirSync(exists)).toEqual([])
    await db.close()
    await expectCode(() => db.copy(path.join(exists, 'y')), 'ERR_HANNOY_CLOSED')
  })
})

describe('closing', () => {
  it('close() resolves every time, also when called again before the first has finished', async () => {
    const db = await Database.open(scratch.dir())
    await db.writer(0, { dimensions: 2 }).addItem(1, [1, 2])
    await Promise.all([db.close(), db.close(), db.close()])
    await db.close()
    await expectCode(() => db.indexes(), 'ERR_HANNOY_CLOSED')
  })

  it('await using closes the database at the end of its block', async () => {
    const dir = scratch.dir()
    let escaped: Database
    {
      await using db = await Database.open(dir)
      escaped = db
      await db.writer(0, { dimensions: 2 }).addItem(1, [1, 2])
    }
    await expectCode(() => escaped.indexes(), 'ERR_HANNOY_CLOSED')
    expect(typeof Database.prototype[Symbol.asyncDispose]).toBe('function')
  })
})
