// Loading the package: ESM default and named imports, CommonJS require, and by the package name
// 'hannoy' (through a temp project whose node_modules/hannoy links to the repository root).
import * as fs from 'node:fs'
import * as path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import * as hannoy from '../index.js'
import { runNode } from './child'
import { FIXTURES, ROOT, Scratch } from './helpers'

const scratch = new Scratch()
afterAll(() => scratch.cleanup())

function lastJson(stdout: string): Record<string, unknown> {
  const lines = stdout.trim().split('\n').filter(Boolean)
  return JSON.parse(lines[lines.length - 1]) as Record<string, unknown>
}

async function runFixture(file: string, cwd?: string): Promise<Record<string, unknown>> {
  const dir = path.join(scratch.dir(), 'db')
  const res = await runNode(file, [dir], { cwd, timeoutMs: 60_000 })
  expect(res.code, `${path.basename(file)} failed:\n${res.stderr}`).toBe(0)
  const out = lastJson(res.stdout)
  expect(out.ok).toBe(true)
  expect(out.ids).toEqual([2, 1])
  return out
}

describe('module formats', () => {
  it('the loader exports the Database, Writer and Reader classes', () => {
    expect(typeof hannoy.Database).toBe('function')
    expect(typeof hannoy.Writer).toBe('function')
    expect(typeof hannoy.Reader).toBe('function')
    expect(typeof hannoy.Database.open).toBe('function')
  })

  it('ESM: default import of index.js', async () => {
    const out = await runFixture(path.join(FIXTURES, 'esm-default.mjs'))
    expect(out.types).toEqual(['function', 'function', 'function'])
    expect(out.sameAsRequire).toBe(true)
    expect(out.instances).toEqual([true, true, true])
  })

  it('ESM: named imports from index.js', async () => {
    const out = await runFixture(path.join(FIXTURES, 'esm-named.mjs'))
    expect(out.types).toEqual(['function', 'function', 'function'])
    expect(out.sameAsDefault).toBe(true)
    expect(out.instances).toEqual([true, true, true])
  })

  it('index.js evaluated twice over the same addon (Jest, hot reloading) still answers with objects', async () => {
    const out = await runFixture(path.join(FIXTURES, 'reload.cjs'))
    expect(out.reloaded).toBe(true)
    expect(out.sameAddon).toBe(true)
    expect(out.distances).toEqual(['number', 'number'])
    expect(out.byId).toEqual([{ id: 2, distance: 0 }])
  })

  it('CommonJS: require of index.js', async () => {
    const out = await runFixture(path.join(FIXTURES, 'cjs-require.cjs'))
    expect(out.types).toEqual(['function', 'function', 'function'])
    expect(out.instances).toEqual([true, true, true])
  })

  describe("by the package name 'hannoy'", () => {
    let project = ''
    function makeProject(): string {
      if (project) return project
      project = scratch.dir()
      fs.mkdirSync(path.join(project, 'node_modules'))
      fs.symlinkSync(ROOT, path.join(project, 'node_modules', 'hannoy'), 'dir')
      fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'user-app', private: true }))
      fs.copyFileSync(path.join(FIXTURES, 'by-name.mjs'), path.join(project, 'app.mjs'))
      fs.copyFileSync(path.join(FIXTURES, 'by-name.cjs'), path.join(project, 'app.cjs'))
      return project
    }

    it("import { Database } from 'hannoy'", async () => {
      const p = makeProject()
      const out = await runFixture(path.join(p, 'app.mjs'), p)
      expect(out.defaultHasDatabase).toBe(true)
    })

    it("require('hannoy')", async () => {
      const p = makeProject()
      await runFixture(path.join(p, 'app.cjs'), p)
    })
  })
})
