// The TypeScript surface: types-check.ts (the whole API with the contract's types) compiles under
// strict, and every public method in index.d.ts carries a doc comment.
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { describe, expect, it } from 'vitest'
import { ROOT } from './helpers'

describe('TypeScript', () => {
  // --skipLibCheck keeps this quick (checking @types/node costs a minute of CPU on a slow machine);
  // the project-wide `tsc --noEmit` (npm run lint, tsconfig.json) checks index.d.ts itself too.
  it('types-check.ts compiles under strict against index.d.ts (tsc --noEmit)', () => {
    const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc')
    const config = path.join(__dirname, 'tsconfig.types.json')
    const res = spawnSync(process.execPath, [tsc, '--noEmit', '--skipLibCheck', '-p', config], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 110_000,
    })
    expect(res.status, `${res.stdout}\n${res.stderr}`).toBe(0)
  })

  it('every public class member in index.d.ts has a doc comment', () => {
    const dts = fs.readFileSync(path.join(ROOT, 'index.d.ts'), 'utf8')
    const lines = dts.split('\n')
    const members: Record<string, string[]> = {
      Database: ['open', 'writer', 'reader', 'indexes', 'close'],
      Writer: ['index', 'dimensions', 'metric', 'addItems', 'addItem', 'deleteItems', 'build', 'clear'],
      Reader: ['index', 'dimensions', 'metric', 'search', 'searchBatch', 'searchById', 'getVector', 'count'],
    }
    const missing: string[] = []
    for (const [cls, names] of Object.entries(members)) {
      const start = lines.findIndex((l) => new RegExp(`^export (declare )?class ${cls}\\b`).test(l))
      expect(start, `class ${cls} not found in index.d.ts`).toBeGreaterThanOrEqual(0)
      let end = start + 1
      while (end < lines.length && !/^}/.test(lines[end])) end++
      for (const name of names) {
        const re = new RegExp(`^\\s*(static\\s+)?(readonly\\s+)?(get\\s+)?${name}\\b\\s*[(:<?]`)
        const at = lines.slice(start + 1, end).findIndex((l) => re.test(l))
        if (at < 0) {
          missing.push(`${cls}.${name} (not declared)`)
          continue
        }
        let prev = start + at
        while (prev > start && lines[prev].trim() === '') prev--
        if (!lines[prev].trim().endsWith('*/')) missing.push(`${cls}.${name}`)
      }
    }
    expect(missing, `members without a doc comment: ${missing.join(', ')}`).toEqual([])
  })
})
