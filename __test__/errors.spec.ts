// Every error code of the contract's table, with its trigger.
//
// ERR_HANNOY_VERSION and ERR_HANNOY_CORRUPT need files that the API never writes: the directories
// in fixtures/dirs were written by `crates/engine/examples/make_fixtures.rs` (a header of a newer
// format, a directory of the pre-release format 1, garbage link lists). The engine's Rust tests
// cover the other corrupt and truncated records.
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { Database } from '../index.js'
import {
  Scratch,
  canWriteIn,
  expectCode,
  expectThrowCode,
  randomVectors,
  range,
  sleep,
} from './helpers'

const scratch = new Scratch()
afterEach(() => scratch.cleanup())
afterAll(() => scratch.cleanup())

const ROOT = path.join(__dirname, '..')
const NOBODY = 65534
const asRoot = process.platform !== 'win32' && process.getuid?.() === 0

/**
 * Root ignores directory permissions, so as root the permission tests run their checks in a child
 * process as an unprivileged user. Returns a directory that user can read, holding a copy of the
 * loader and the addon, and the function that runs the child.
 */
function unprivileged(): { base: string; run: (mode: string, dir: string) => Record<string, unknown> } {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'hannoy-nobody-'))
  fs.chmodSync(base, 0o755)
  scratch.onCleanup(() => fs.rmSync(base, { recursive: true, force: true }))
  const addon = path.join(base, 'addon')
  fs.mkdirSync(addon)
  const binaries = fs.readdirSync(ROOT).filter((f) => /^hannoy\..*\.node$/.test(f))
  for (const f of ['index.js', 'binding.js', 'package.json', ...binaries]) fs.copyFileSync(path.join(ROOT, f), path.join(addon, f))
  const child = path.join(base, 'child.cjs')
  fs.copyFileSync(path.join(__dirname, 'fixtures', 'unwritable-child.cjs'), child)
  for (const f of [addon, child, ...fs.readdirSync(addon).map((f) => path.join(addon, f))]) {
    fs.chmodSync(f, fs.statSync(f).isDirectory() ? 0o755 : 0o644)
  }
  const run = (mode: string, dir: string) => {
    const res = spawnSync(process.execPath, [child, addon, mode, dir], {
      encoding: 'utf8',
      uid: NOBODY,
      gid: NOBODY,
      cwd: base,
      timeout: 60_000,
    })
    expect(res.status, `child as uid ${NOBODY} failed:\n${res.stdout}\n${res.stderr}`).toBe(0)
    return JSON.parse(res.stdout.trim().split('\n').pop() as string) as Record<string, unknown>
  }
  return { base, run }
}

/** Hands a directory and everything in it to the unprivileged user. */
function chownTree(dir: string, uid: number): void {
  fs.chownSync(dir, uid, uid)
  for (const f of fs.readdirSync(dir)) fs.chownSync(path.join(dir, f), uid, uid)
}

async function openFresh(): Promise<Database> {
  return scratch.track(await Database.open(scratch.dir()))
}

describe('ERR_HANNOY_INVALID_ARGUMENT', () => {
  it('an index id out of 0..65535, a bad k (details in validation.spec.ts)', async () => {
    const db = await openFresh()
    expectThrowCode(() => db.writer(65536, { dimensions: 4 }), 'ERR_HANNOY_INVALID_ARGUMENT', 'writer(65536)')
    const w = db.writer(1, { dimensions: 4, metric: 'euclidean' })
    await w.addItems(range(0, 5), randomVectors(5, 4, 1))
    await w.build()
    const r = await db.reader(1)
    await expectCode(() => r.search([1, 2, 3, 4], { k: 0 }), 'ERR_HANNOY_INVALID_ARGUMENT', 'k = 0')
    const err = await expectCode(() => w.addItem(-1, [1, 2, 3, 4]), 'ERR_HANNOY_INVALID_ARGUMENT', 'id -1')
    expect(err.message.length).toBeGreaterThan(0)
  })
})

describe('ERR_HANNOY_DIMENSION_MISMATCH', () => {
  it('addItem with a vector of another length', async () => {
    const db = await openFresh()
    const w = db.writer(1, { dimensions: 4, metric: 'euclidean' })
    await w.addItems(range(0, 5), randomVectors(5, 4, 2))
    await w.build()
    await expectCode(() => w.addItem(10, new Float32Array(3)), 'ERR_HANNOY_DIMENSION_MISMATCH', 'addItem 3 of 4')
    await expectCode(() => w.addItem(11, [1, 2, 3, 4, 5]), 'ERR_HANNOY_DIMENSION_MISMATCH', 'addItem 5 of 4')
    await expectCode(() => w.addItem(12, []), 'ERR_HANNOY_DIMENSION_MISMATCH', 'addItem 0 of 4')
    const r = await db.reader(1)
    expect(await r.count()).toBe(5)
    for (const id of [10, 11, 12]) expect(await r.getVector(id)).toBeNull()
  })

  it('a query of another length (search)', async () => {
    const db = await openFresh()
    const w = db.writer(1, { dimensions: 4, metric: 'cosine' })
    await w.addItems(range(0, 5), randomVectors(5, 4, 3))
    await w.build()
    const r = await db.reader(1)
    await expectCode(() => r.search([1, 2, 3]), 'ERR_HANNOY_DIMENSION_MISMATCH', 'search 3 of 4')
    await expectCode(() => r.search(new Float32Array(8)), 'ERR_HANNOY_DIMENSION_MISMATCH', 'search 8 of 4')
  })

  it('a writer asking for other dimensions than the stored index has (thrown by writer())', async () => {
    const db = await openFresh()
    const w = db.writer(3, { dimensions: 4, metric: 'euclidean' })
    await w.addItem(1, [1, 2, 3, 4])
    expectThrowCode(() => db.writer(3, { dimensions: 5, metric: 'euclidean' }), 'ERR_HANNOY_DIMENSION_MISMATCH', 'writer dims 5 vs 4')
    // the same dimensions and metric are fine
    const again = db.writer(3, { dimensions: 4, metric: 'euclidean' })
    expect(again.dimensions).toBe(4)
    expect(await db.indexes()).toEqual([{ index: 3, dimensions: 4, metric: 'euclidean', quantization: 'none', items: 1 }])
  })
})

describe('ERR_HANNOY_METRIC_MISMATCH', () => {
  it('a writer asking for another metric than the stored index has (thrown by writer())', async () => {
    const db = await openFresh()
    const w = db.writer(2, { dimensions: 3, metric: 'manhattan' })
    await w.addItem(1, [1, 2, 3])
    for (const m of ['euclidean', 'cosine', 'hamming', 'bq-manhattan'] as const) {
      expectThrowCode(() => db.writer(2, { dimensions: 3, metric: m }), 'ERR_HANNOY_METRIC_MISMATCH', `writer ${m} vs manhattan`)
    }
    expect(db.writer(2, { dimensions: 3, metric: 'manhattan' }).metric).toBe('manhattan')
    expect(await db.indexes()).toEqual([{ index: 2, dimensions: 3, metric: 'manhattan', quantization: 'none', items: 1 }])
  })
})

describe('ERR_HANNOY_INDEX_NOT_FOUND', () => {
  it('a reader for an index with no items', async () => {
    const db = await openFresh()
    await expectCode(() => db.reader(), 'ERR_HANNOY_INDEX_NOT_FOUND', 'reader() on an empty database')
    await expectCode(() => db.reader(9), 'ERR_HANNOY_INDEX_NOT_FOUND', 'reader(9)')
    // a writer alone does not create the index
    db.writer(9, { dimensions: 2 })
    await expectCode(() => db.reader(9), 'ERR_HANNOY_INDEX_NOT_FOUND', 'reader(9) after writer()')
    // another index having items does not help
    const w = db.writer(8, { dimensions: 2 })
    await w.addItem(1, [1, 2])
    await w.build()
    await expectCode(() => db.reader(9), 'ERR_HANNOY_INDEX_NOT_FOUND', 'reader(9) with index 8 built')
  })

  it('a reader for an index whose items were all deleted or cleared', async () => {
    const db = await openFresh()
    const w = db.writer(1, { dimensions: 2, metric: 'euclidean' })
    await w.addItems([1, 2], new Float32Array([1, 2, 3, 4]))
    await w.build()
    await w.clear()
    await expectCode(() => db.reader(1), 'ERR_HANNOY_INDEX_NOT_FOUND', 'reader after clear')
  })
})

describe('ERR_HANNOY_NEEDS_BUILD', () => {
  it('a reader for an index that has items but was never built', async () => {
    const db = await openFresh()
    const w = db.writer(4, { dimensions: 2, metric: 'euclidean' })
    await w.addItems([1, 2, 3], new Float32Array([1, 2, 3, 4, 5, 6]))
    await expectCode(() => db.reader(4), 'ERR_HANNOY_NEEDS_BUILD', 'reader before build')
    await w.build()
    const r = await db.reader(4)
    expect(await r.count()).toBe(3)
  })
})

describe('ERR_HANNOY_READ_ONLY', () => {
  async function makeDb(dir: string): Promise<void> {
    const db = await Database.open(dir)
    const w = db.writer(1, { dimensions: 4, metric: 'euclidean' })
    await w.addItems(range(0, 50), randomVectors(50, 4, 5))
    await w.build()
    await db.close()
  }

  async function expectWritesRejected(db: Database, index: number, what: string): Promise<void> {
    let w: ReturnType<Database['writer']>
    try {
      w = db.writer(index, { dimensions: 4, metric: 'euclidean' })
    } catch (e) {
      // writer() itself may refuse; then it must say why
      expect((e as { code?: string }).code, `${what}: writer() threw ${String(e)}`).toBe('ERR_HANNOY_READ_ONLY')
      return
    }
    await expectCode(() => w.addItem(100, [1, 2, 3, 4]), 'ERR_HANNOY_READ_ONLY', `${what} addItem`)
    await expectCode(() => w.addItems([101, 102], new Float32Array(8)), 'ERR_HANNOY_READ_ONLY', `${what} addItems`)
    await expectCode(() => w.deleteItems([1, 2]), 'ERR_HANNOY_READ_ONLY', `${what} deleteItems`)
    await expectCode(() => w.build(), 'ERR_HANNOY_READ_ONLY', `${what} build`)
    await expectCode(() => w.clear(), 'ERR_HANNOY_READ_ONLY', `${what} clear`)
  }

  it('writes on a database opened read-only reject; reads work; nothing changed', async () => {
    const dir = scratch.dir()
    await makeDb(dir)
    const db = scratch.track(await Database.open(dir, { readOnly: true }))
    await expectWritesRejected(db, 1, 'existing index')
    await expectWritesRejected(db, 2, 'new index')
    const r = await db.reader(1)
    expect(await r.count()).toBe(50)
    expect(await r.getVector(100)).toBeNull()
    expect(await r.getVector(1)).not.toBeNull()
    expect((await r.search([0, 0, 0, 0], { k: 5 })).length).toBe(5)
    expect(await db.indexes()).toEqual([{ index: 1, dimensions: 4, metric: 'euclidean', quantization: 'none', items: 50 }])
  })

  it('read-only works on a directory the process cannot write to', async (ctx) => {
    // Windows ignores the POSIX mode bits that would make the directory unwritable.
    if (process.platform === 'win32') return ctx.skip()
    if (asRoot) {
      // The serverless case: the index directory belongs to the function's user and is read-only.
      const { base, run } = unprivileged()
      const dir = path.join(base, 'db')
      fs.mkdirSync(dir)
      await makeDb(dir)
      chownTree(dir, NOBODY)
      fs.chmodSync(dir, 0o555)
      const before = fs.readdirSync(dir).sort()
      const out = run('read-only', dir)
      expect(out.uid).toBe(NOBODY)
      expect(out.canWrite).toBe(false)
      expect(out.count).toBe(50)
      expect(out.hits).toBe(3)
      expect(out.writes).toEqual(Array(4).fill('ERR_HANNOY_READ_ONLY'))
      expect(out.countAfter).toBe(50)
      expect(out.files).toEqual(before) // no lock file, nothing created
      return
    }
    const dir = scratch.dir()
    await makeDb(dir)
    fs.chmodSync(dir, 0o555)
    try {
      expect(canWriteIn(dir)).toBe(false)
      const db = await Database.open(dir, { readOnly: true })
      try {
        const r = await db.reader(1)
        expect(await r.count()).toBe(50)
        expect((await r.search([1, 1, 1, 1], { k: 3 })).length).toBe(3)
        await expectWritesRejected(db, 1, 'non-writable dir')
      } finally {
        await db.close()
      }
    } finally {
      fs.chmodSync(dir, 0o755)
    }
  })
})

describe('ERR_HANNOY_CLOSED', () => {
  it('every call after close() fails with ERR_HANNOY_CLOSED, for writers and readers made before too', async () => {
    const dir = scratch.dir()
    const db = await Database.open(dir)
    const w = db.writer(1, { dimensions: 3, metric: 'euclidean' })
    await w.addItems(range(0, 10), randomVectors(10, 3, 6))
    await w.build()
    const r = await db.reader(1)
    await db.close()

    const C = 'ERR_HANNOY_CLOSED'
    expectThrowCode(() => db.writer(1, { dimensions: 3, metric: 'euclidean' }), C, 'db.writer')
    expectThrowCode(() => db.writer(2, { dimensions: 3 }), C, 'db.writer new index')
    await expectCode(() => db.reader(1), C, 'db.reader')
    await expectCode(() => db.indexes(), C, 'db.indexes')

    await expectCode(() => w.addItems([20], new Float32Array(3)), C, 'writer.addItems')
    await expectCode(() => w.addItem(21, [1, 2, 3]), C, 'writer.addItem')
    await expectCode(() => w.deleteItems([1]), C, 'writer.deleteItems')
    await expectCode(() => w.build(), C, 'writer.build')
    await expectCode(() => w.clear(), C, 'writer.clear')

    await expectCode(() => r.search([1, 2, 3]), C, 'reader.search')
    await expectCode(() => r.searchBatch(new Float32Array(6)), C, 'reader.searchBatch')
    await expectCode(() => r.searchById(1), C, 'reader.searchById')
    await expectCode(() => r.getVector(1), C, 'reader.getVector')
    await expectCode(() => r.count(), C, 'reader.count')

    // close() itself resolves again
    await expect(db.close()).resolves.toBeUndefined()

    // the data is intact: reopen
    const db2 = scratch.track(await Database.open(dir))
    expect(await (await db2.reader(1)).count()).toBe(10)
  })

  it('close() while reads are in flight: each read resolves or rejects with ERR_HANNOY_CLOSED, no crash', async () => {
    const db = await Database.open(scratch.dir())
    const w = db.writer(1, { dimensions: 16, metric: 'euclidean' })
    await w.addItems(range(0, 2000), randomVectors(2000, 16, 7))
    await w.build()
    const r = await db.reader(1)
    const queries = randomVectors(40, 16, 8)
    const inflight: Array<Promise<unknown>> = []
    for (let i = 0; i < 40; i++) {
      inflight.push(r.search(queries.subarray(i * 16, (i + 1) * 16), { k: 10, ef: 64 }))
      inflight.push(r.getVector(i))
    }
    inflight.push(r.searchBatch(queries, { k: 10 }))
    inflight.push(r.count())
    const closing = db.close()
    const settled = await Promise.allSettled([...inflight, closing])
    for (const s of settled) {
      if (s.status === 'rejected') expect((s.reason as { code?: string }).code, String(s.reason)).toBe('ERR_HANNOY_CLOSED')
    }
    await sleep(50)
    await expectCode(() => r.search(queries.subarray(0, 16)), 'ERR_HANNOY_CLOSED', 'search after close')
  })
})

/** A copy of one of the damaged directories in fixtures/dirs (tests never touch the originals). */
function damaged(name: string): string {
  const dir = scratch.dir()
  fs.copyFileSync(path.join(__dirname, 'fixtures', 'dirs', name, 'data.mdb'), path.join(dir, 'data.mdb'))
  return dir
}

describe('ERR_HANNOY_VERSION and ERR_HANNOY_CORRUPT', () => {
  it('an index written by a newer format version is refused, read-write and read-only', async () => {
    for (const readOnly of [false, true]) {
      const db = scratch.track(await Database.open(damaged('newer'), { readOnly }))
      const err = await expectCode(() => db.reader(0), 'ERR_HANNOY_VERSION', `reader, readOnly ${readOnly}`)
      expect(err.message).toContain('upgrade')
      await expectCode(() => db.indexes(), 'ERR_HANNOY_VERSION', 'indexes')
    }
  })

  it('a directory of the pre-release format 1 is refused and left as it was', async () => {
    for (const readOnly of [false, true]) {
      const dir = damaged('format1')
      const before = fs.readFileSync(path.join(dir, 'data.mdb'))
      const err = await expectCode(() => Database.open(dir, { readOnly }), 'ERR_HANNOY_VERSION', `open, readOnly ${readOnly}`)
      expect(err.message).toContain('rebuild')
      expect(fs.readFileSync(path.join(dir, 'data.mdb')).equals(before)).toBe(true)
    }
  })

  it('garbage link lists make searches reject, never crash; the rest stays readable', async () => {
    const db = scratch.track(await Database.open(damaged('corrupt')))
    const reader = await db.reader(0)
    expect(await reader.count()).toBe(20)
    expect(await reader.getVector(3)).not.toBeNull()
    await expectCode(() => reader.search([1, 2, 3, 4], { k: 5 }), 'ERR_HANNOY_CORRUPT', 'search')
    await expectCode(() => reader.searchBatch(new Float32Array(8), { k: 5 }), 'ERR_HANNOY_CORRUPT', 'searchBatch')
    await expectCode(() => reader.searchById(3, { k: 5 }), 'ERR_HANNOY_CORRUPT', 'searchById')
    // a build reads the links too: it rejects and changes nothing
    const writer = db.writer(0, { dimensions: 4, metric: 'euclidean' })
    await writer.addItem(100, [1, 1, 1, 1])
    await expectCode(() => writer.build(), 'ERR_HANNOY_CORRUPT', 'build')
    expect(await reader.count()).toBe(21)
  })
})

describe('ERR_HANNOY_IO', () => {
  it('opening a database at a path that is an existing regular file', async () => {
    const dir = scratch.dir()
    const file = path.join(dir, 'not-a-dir')
    fs.writeFileSync(file, 'hello')
    const err = await expectCode(() => Database.open(file), 'ERR_HANNOY_IO', 'open on a file')
    expect(err.message.length).toBeGreaterThan(0)
    // the file is left alone
    expect(fs.readFileSync(file, 'utf8')).toBe('hello')
  })

  it('opening (creating) a database inside a directory the process cannot write to', async (ctx) => {
    if (process.platform === 'win32') return ctx.skip()
    if (asRoot) {
      const { base, run } = unprivileged()
      const parent = path.join(base, 'locked')
      fs.mkdirSync(parent, 0o555)
      fs.chmodSync(parent, 0o555)
      const out = run('create', path.join(parent, 'db'))
      expect(out.uid).toBe(NOBODY)
      expect(out.open).toBe('ERR_HANNOY_IO')
      expect(fs.readdirSync(parent)).toEqual([])
      return
    }
    const parent = scratch.dir()
    fs.chmodSync(parent, 0o555)
    try {
      expect(canWriteIn(parent)).toBe(false)
      await expectCode(() => Database.open(path.join(parent, 'db')), 'ERR_HANNOY_IO', 'open in a 0555 dir')
    } finally {
      fs.chmodSync(parent, 0o755)
    }
  })

  it('opening read-only a path that does not exist (the OS refuses: ENOENT)', async () => {
    const dir = path.join(scratch.dir(), 'missing')
    await expectCode(() => Database.open(dir, { readOnly: true }), 'ERR_HANNOY_IO', 'readOnly on a missing dir')
  })
})
