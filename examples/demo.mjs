// npm run demo: index the 20,000 GloVe words shipped in fixtures/, then show nearest words.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const { Database } = require('../index.js')
const here = dirname(fileURLToPath(import.meta.url))

const raw = readFileSync(join(here, '../fixtures/glove-6b-50d-20k.f32'))
const rows = raw.readUInt32LE(0)
const dims = raw.readUInt32LE(4)
const vectors = new Float32Array(raw.buffer.slice(raw.byteOffset + 8, raw.byteOffset + 8 + rows * dims * 4))
const words = readFileSync(join(here, '../fixtures/glove-6b-50d-20k.words.txt'), 'utf8').trim().split('\n')
const queries = process.argv.slice(2).length ? process.argv.slice(2) : ['king', 'paris', 'computer', 'river', 'happy']

const dir = mkdtempSync(join(tmpdir(), 'hannoy-demo-'))
try {
  const db = await Database.open(dir)
  const writer = db.writer(0, { dimensions: dims, metric: 'cosine' })
  const ids = Uint32Array.from({ length: rows }, (_, i) => i)
  await writer.addItems(ids, vectors)
  const built = await writer.build({
    onProgress: ({ phase, done, total }) => process.stdout.write(`\r${phase} ${done}/${total}      `),
  })
  process.stdout.write('\r')
  console.log(`built ${built.items} words × ${dims} dims in ${built.seconds.toFixed(2)} s`)

  const reader = await db.reader(0)
  const latencies = []
  for (const word of queries) {
    const id = words.indexOf(word)
    if (id < 0) {
      console.log(`${word}: not among the 20,000 words`)
      continue
    }
    const start = process.hrtime.bigint()
    const hits = await reader.searchById(id, { k: 6 })
    latencies.push(Number(process.hrtime.bigint() - start) / 1e6)
    const list = hits.filter((h) => h.id !== id).map((h) => `${words[h.id]} (${h.distance.toFixed(3)})`)
    console.log(`${word}: ${list.join(', ')}`)
  }
  // Latency of plain vector searches, one at a time.
  const times = []
  for (let i = 0; i < 1000; i++) {
    const q = vectors.subarray(((i * 7919) % rows) * dims, ((i * 7919) % rows + 1) * dims)
    const start = process.hrtime.bigint()
    await reader.search(q, { k: 10 })
    times.push(Number(process.hrtime.bigint() - start) / 1e6)
  }
  times.sort((a, b) => a - b)
  console.log(`search latency over 1,000 awaited queries: p50 ${times[500].toFixed(3)} ms, p99 ${times[990].toFixed(3)} ms`)
  await db.close()
} finally {
  rmSync(dir, { recursive: true, force: true })
}
