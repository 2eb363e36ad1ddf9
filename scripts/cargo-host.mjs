#!/usr/bin/env node
// Runs cargo with `--target <host triple>`, the way `napi build` does, so that `npm test` and
// `npm run lint` reuse the dependencies that `npm install` already compiled for the addon
// (same target directory, same profile) instead of building them a second time.
import { execFileSync, spawnSync } from 'node:child_process'

const cargo = process.env.CARGO || 'cargo'
const rustc = process.env.RUSTC || 'rustc'
const info = execFileSync(rustc, ['-vV'], { encoding: 'utf8' })
const host = /^host: (\S+)$/m.exec(info)?.[1]
if (!host) {
  console.error('cargo-host: could not read the host triple from `rustc -vV`')
  process.exit(1)
}

const args = process.argv.slice(2)
const sep = args.indexOf('--')
const own = sep === -1 ? args : args.slice(0, sep)
const rest = sep === -1 ? [] : args.slice(sep)
const result = spawnSync(cargo, [...own, '--target', host, ...rest], { stdio: 'inherit' })
process.exit(result.status ?? 1)
