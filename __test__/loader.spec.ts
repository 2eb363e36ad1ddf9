// The loader: without a binary for this machine, `require('hannoy')` throws an error that names the
// platform and the package it looked for, not a bare MODULE_NOT_FOUND.
import { spawnSync } from 'node:child_process'
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'

const root = join(__dirname, '..')
const dir = mkdtempSync(join(tmpdir(), 'hannoy-loader-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('loader', () => {
  it('names the platform and the missing package when no binary fits', () => {
    // The loader files alone, without any .node file or platform package beside them.
    for (const file of ['index.js', 'binding.js', 'package.json']) copyFileSync(join(root, file), join(dir, file))
    const script = `try { require(${JSON.stringify(join(dir, 'index.js'))}); console.log('LOADED') }
      catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })) }`
    const res = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...process.env, NAPI_RS_NATIVE_LIBRARY_PATH: '' } })
    expect(res.status, res.stderr).toBe(0)
    expect(res.stdout).not.toContain('LOADED')
    const err = JSON.parse(res.stdout) as { code: string; message: string }
    expect(err.code).toBe('ERR_HANNOY_NATIVE_ADDON')
    expect(err.message).toContain(`${process.platform}-${process.arch}`)
    expect(err.message).toMatch(/looked for the package "hannoy-[a-z0-9]+-[a-z0-9]+(-(gnu|musl|msvc))?"/)
    expect(err.message).toContain('npm install hannoy')
  })
})
