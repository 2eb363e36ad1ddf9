// Shared helpers for the hannoy vitest suite: temp dirs, a seeded RNG and data generators,
// brute-force distances, and assertions on error codes.
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { expect } from 'vitest'
import type { Database, Reader, Writer } from '../index.js'

export const ROOT = path.resolve(__dirname, '..')
export const FIXTURES = path.join(__dirname, 'fixtures')
export const INDEX_JS = path.join(ROOT, 'index.js')

export const PAD_ID = 0xffffffff

export const FLOAT_METRICS = ['euclidean', 'cosine', 'manhattan'] as const
export const BQ_METRICS = ['bq-euclidean', 'bq-cosine', 'bq-manhattan'] as const
export const ALL_METRICS = [...FLOAT_METRICS, 'hamming', ...BQ_METRICS] as const
export type AnyMetric = (typeof ALL_METRICS)[number]

// ---------------------------------------------------------------- temp dirs

export function makeTmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'hannoy-'))
}

export function removeDir(dir: string): void {
  try {
    fs.chmodSync(dir, 0o755)
  } catch {
    // ignore
  }
  fs.rmSync(dir, { recursive: true, force: true })
}

/** Collects temp dirs and things to close; call `cleanup()` in afterAll/afterEach. */
export class Scratch {
  private dirs: string[] = []
  private closers: Array<() => Promise<unknown> | unknown> = []

  dir(): string {
    const d = makeTmpDir()
    this.dirs.push(d)
    return d
  }

  /** Registers something with a `close()` to be closed (errors ignored) at cleanup. */
  track<T extends { close(): Promise<void> }>(x: T): T {
    this.closers.push(() => x.close())
    return x
  }

  onCleanup(fn: () => Promise<unknown> | unknown): void {
    this.closers.push(fn)
  }

  async cleanup(): Promise<void> {
    const closers = this.closers.splice(0).reverse()
    for (const c of closers) {
      try {
        await c()
      } catch {
        // already closed, or the test failed half-way: ignore
      }
    }
    for (const d of this.dirs.splice(0)) removeDir(d)
  }
}

/** True when the current process can create a file in `dir` (false e.g. after chmod 0o555 when not root). */
export function canWriteIn(dir: string): boolean {
  const probe = path.join(dir, `.probe-${process.pid}-${Date.now()}`)
  try {
    fs.writeFileSync(probe, 'x')
    fs.unlinkSync(probe)
    return true
  } catch {
    return false
  }
}

// ---------------------------------------------------------------- seeded data

/** mulberry32: small, fast, deterministic PRNG returning floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export function gaussian(rng: () => number): number {
  const u1 = 1 - rng() // (0, 1]
  const u2 = rng()
  return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2)
}

/** n × d standard-normal vectors, row-major. */
export function randomVectors(n: number, d: number, seed: number): Float32Array {
  const rng = mulberry32(seed)
  const out = new Float32Array(n * d)
  for (let i = 0; i < out.length; i++) out[i] = gaussian(rng)
  return out
}

/** n × d vectors of 0/1 components (for the hamming metric). */
export function binaryVectors(n: number, d: number, seed: number): Float32Array {
  const rng = mulberry32(seed)
  const out = new Float32Array(n * d)
  for (let i = 0; i < out.length; i++) out[i] = rng() < 0.5 ? 0 : 1
  return out
}

/**
 * Clustered data: `clusters` gaussian centres, each point = centre + spread × noise.
 * Queries are drawn from the same mixture (same centres, other noise).
 */
export function clusteredVectors(
  nData: number,
  nQueries: number,
  d: number,
  clusters: number,
  seed: number,
  spread = 0.35,
): { data: Float32Array; queries: Float32Array } {
  const rng = mulberry32(seed)
  const centres = new Float64Array(clusters * d)
  for (let i = 0; i < centres.length; i++) centres[i] = gaussian(rng)
  const gen = (n: number) => {
    const out = new Float32Array(n * d)
    for (let i = 0; i < n; i++) {
      const c = Math.floor(rng() * clusters)
      for (let j = 0; j < d; j++) out[i * d + j] = centres[c * d + j] + spread * gaussian(rng)
    }
    return out
  }
  const data = gen(nData)
  const queries = gen(nQueries)
  return { data, queries }
}

export function row(data: Float32Array, i: number, d: number): Float32Array {
  return data.subarray(i * d, (i + 1) * d)
}

export function range(start: number, n: number): Uint32Array {
  const out = new Uint32Array(n)
  for (let i = 0; i < n; i++) out[i] = start + i
  return out
}

// ---------------------------------------------------------------- distances

export function euclidean(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0
  for (let i = 0; i < a.length; i++) {
    const x = a[i] - b[i]
    s += x * x
  }
  return Math.sqrt(s)
}

export function cosineDistance(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let dot = 0
  let na = 0
  let nb = 0
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i]
    na += a[i] * a[i]
    nb += b[i] * b[i]
  }
  return 1 - dot / Math.sqrt(na * nb)
}

export function manhattan(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i] - b[i])
  return s
}

/** Differing bits, a component != 0 being a 1. */
export function hammingBits(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0
  for (let i = 0; i < a.length; i++) if ((a[i] !== 0) !== (b[i] !== 0)) s++
  return s
}

/** Differing signs (x > 0 is a 1): the rank order of every binary-quantized metric. */
export function signHamming(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0
  for (let i = 0; i < a.length; i++) if (a[i] > 0 !== b[i] > 0) s++
  return s
}

export function distanceFn(metric: string): (a: ArrayLike<number>, b: ArrayLike<number>) => number {
  switch (metric) {
    case 'euclidean':
      return euclidean
    case 'cosine':
      return cosineDistance
    case 'manhattan':
      return manhattan
    case 'hamming':
      return hammingBits
    case 'bq-euclidean':
    case 'bq-cosine':
    case 'bq-manhattan':
      return signHamming
    default:
      throw new Error(`unknown metric ${metric}`)
  }
}

export interface Hit {
  id: number
  distance: number
}

/** Exact k nearest of `query` among the rows of `data` (row i has id `ids[i]`, default i). */
export function bruteForce(
  metric: string,
  data: Float32Array,
  d: number,
  query: ArrayLike<number>,
  k: number,
  opts: { ids?: ArrayLike<number>; allowed?: Set<number>; exclude?: Set<number> } = {},
): Hit[] {
  const dist = distanceFn(metric)
  const n = data.length / d
  const all: Hit[] = []
  for (let i = 0; i < n; i++) {
    const id = opts.ids ? opts.ids[i] : i
    if (opts.allowed && !opts.allowed.has(id)) continue
    if (opts.exclude && opts.exclude.has(id)) continue
    all.push({ id, distance: dist(row(data, i, d), query) })
  }
  all.sort((a, b) => a.distance - b.distance || a.id - b.id)
  return all.slice(0, k)
}

export function recall(got: ArrayLike<number>, expected: ArrayLike<number>): number {
  const want = new Set<number>(Array.from(expected))
  if (want.size === 0) return 1
  let hit = 0
  for (const id of Array.from(got)) if (want.has(id)) hit++
  return hit / want.size
}

/** |a - b| within 1e-4 relative (plus a tiny absolute slack for distances near 0). */
export function closeTo(actual: number, expected: number, rel = 1e-4, abs = 1e-5): boolean {
  return Math.abs(actual - expected) <= rel * Math.abs(expected) + abs
}

export function expectNearestFirst(hits: ReadonlyArray<Hit>): void {
  for (let i = 1; i < hits.length; i++) {
    expect(hits[i].distance, `result ${i} is nearer than result ${i - 1}`).toBeGreaterThanOrEqual(hits[i - 1].distance)
  }
}

export function expectValidHits(hits: ReadonlyArray<Hit>): void {
  expect(Array.isArray(hits)).toBe(true)
  const seen = new Set<number>()
  for (const h of hits) {
    expect(Number.isInteger(h.id)).toBe(true)
    expect(h.id).toBeGreaterThanOrEqual(0)
    expect(h.id).toBeLessThanOrEqual(0xffffffff)
    expect(typeof h.distance).toBe('number')
    expect(Number.isNaN(h.distance)).toBe(false)
    expect(seen.has(h.id), `id ${h.id} returned twice`).toBe(false)
    seen.add(h.id)
  }
  expectNearestFirst(hits)
}

// ---------------------------------------------------------------- error assertions

export type CodedError = Error & { code?: string }

function describeErr(e: unknown): string {
  if (e instanceof Error) return `${e.name}: ${e.message} (code ${(e as CodedError).code})`
  return String(e)
}

/**
 * Calls `fn` and expects it to fail with an `Error` whose `code` is `code`.
 * A synchronous throw from a Promise-returning method is accepted too (the caller who awaits
 * sees the same thing); what is checked is the error and its code.
 */
export async function expectCode(fn: () => unknown, code: string, what = ''): Promise<CodedError> {
  let err: unknown
  let failed = false
  try {
    await fn()
  } catch (e) {
    failed = true
    err = e
  }
  expect(failed, `${what}: expected a rejection with ${code}, but the call succeeded`).toBe(true)
  expect(err instanceof Error, `${what}: expected an Error, got ${describeErr(err)}`).toBe(true)
  expect((err as CodedError).code, `${what}: ${describeErr(err)}`).toBe(code)
  return err as CodedError
}

/** Like expectCode but accepts any of several codes (only where the contract is ambiguous). */
export async function expectOneOfCodes(fn: () => unknown, codes: string[], what = ''): Promise<CodedError> {
  let err: unknown
  let failed = false
  try {
    await fn()
  } catch (e) {
    failed = true
    err = e
  }
  expect(failed, `${what}: expected a rejection with one of ${codes.join(', ')}, but the call succeeded`).toBe(true)
  expect(err instanceof Error, `${what}: expected an Error, got ${describeErr(err)}`).toBe(true)
  expect(codes, `${what}: ${describeErr(err)}`).toContain((err as CodedError).code)
  return err as CodedError
}

/** Expects `fn` to throw synchronously an Error with `code`. */
export function expectThrowCode(fn: () => unknown, code: string, what = ''): CodedError {
  let err: unknown
  let threw = false
  try {
    const r = fn()
    if (r && typeof (r as Promise<unknown>).then === 'function') {
      ;(r as Promise<unknown>).catch(() => {})
    }
  } catch (e) {
    threw = true
    err = e
  }
  expect(threw, `${what}: expected a synchronous throw with ${code}`).toBe(true)
  expect(err instanceof Error, `${what}: expected an Error, got ${describeErr(err)}`).toBe(true)
  expect((err as CodedError).code, `${what}: ${describeErr(err)}`).toBe(code)
  return err as CodedError
}

/** Expects `fn` to reject (or throw) with an error named AbortError. */
export async function expectAbort(fn: () => unknown, what = ''): Promise<Error> {
  let err: unknown
  let failed = false
  try {
    await fn()
  } catch (e) {
    failed = true
    err = e
  }
  expect(failed, `${what}: expected an AbortError, but the call succeeded`).toBe(true)
  expect(err instanceof Error, `${what}: expected an Error, got ${describeErr(err)}`).toBe(true)
  expect((err as Error).name, `${what}: ${describeErr(err)}`).toBe('AbortError')
  return err as Error
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** Polls `cond` every `every` ms until true or `timeoutMs` passes; returns whether it became true. */
export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number, every = 20): Promise<boolean> {
  const end = Date.now() + timeoutMs
  for (;;) {
    if (await cond()) return true
    if (Date.now() > end) return false
    await sleep(every)
  }
}

// ---------------------------------------------------------------- database shortcuts


/** The metric type as the binding declares it (derived, so the suite does not depend on a type's name). */
export type MetricName = NonNullable<Parameters<Database['writer']>[1]['metric']>

export interface Filled {
  writer: Writer
  reader: Reader
  ids: Uint32Array
}

/** Adds `data` (n × d) with ids 0..n-1 (or `ids`) to `index`, builds, and opens a reader. */
export async function fillAndBuild(
  db: Database,
  index: number,
  metric: string,
  d: number,
  data: Float32Array,
  opts: { ids?: Uint32Array; batch?: number; build?: Parameters<Writer['build']>[0] } = {},
): Promise<Filled> {
  const n = data.length / d
  const ids = opts.ids ?? range(0, n)
  const writer = db.writer(index, { dimensions: d, metric: metric as MetricName })
  const batch = opts.batch ?? n
  for (let start = 0; start < n; start += batch) {
    const end = Math.min(n, start + batch)
    await writer.addItems(ids.subarray(start, end), data.subarray(start * d, end * d))
  }
  await writer.build(opts.build)
  const reader = await db.reader(index)
  return { writer, reader, ids }
}
