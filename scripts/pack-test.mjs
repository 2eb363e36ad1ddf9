#!/usr/bin/env node
// Packaging test: packs the main package and this machine's platform package the way they are
// published, installs both tarballs into a fresh project with cargo and rustc off PATH, then runs
// the README quick start there (the code block itself) and its CommonJS twin, and type-checks a
// strict TypeScript file.
// Prints the size of both packages. Needs the addon built (`npm install` / `npm run build`).
import { execFileSync } from 'node:child_process'
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
const npmCli = process.env.npm_execpath // set when run through `npm run`; else use `npm` on PATH

function fail(message) {
  console.error(`pack-test: ${message}`)
  process.exit(1)
}

function run(cmd, args, opts = {}) {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...opts })
}

function npm(args, opts) {
  return npmCli && npmCli.endsWith('.js')
    ? run(process.execPath, [npmCli, ...args], opts)
    : run(process.platform === 'win32' ? 'npm.cmd' : 'npm', args, opts)
}

/** This machine's napi platform suffix, e.g. linux-x64-gnu, darwin-arm64, win32-x64-msvc. */
function platformSuffix() {
  const { platform, arch } = process
  if (platform === 'linux') {
    const glibc = process.report?.getReport()?.header?.glibcVersionRuntime
    return `linux-${arch}-${glibc ? 'gnu' : 'musl'}`
  }
  if (platform === 'win32') return `win32-${arch}-msvc`
  return `${platform}-${arch}`
}

/** This machine's platform package directory under npm/ and its binary in the repository root. */
function platformDir() {
  const suffix = platformSuffix()
  const binary = `${pkg.napi.binaryName}.${suffix}.node`
  const dir = join(root, 'npm', suffix)
  if (!existsSync(join(dir, 'package.json'))) fail(`no npm/${suffix} package for this platform`)
  if (!existsSync(join(root, binary))) fail(`${binary} is not built; run npm run build first`)
  return { dir, binary }
}

/** `npm pack` into `dest`, returning the tarball's path. */
function pack(dir, dest) {
  const out = npm(['pack', '--ignore-scripts', '--json', '--pack-destination', dest], { cwd: dir })
  const [info] = JSON.parse(out)
  return { path: join(dest, info.filename), files: info.files.map((f) => f.path), size: info.size }
}

/** PATH without any directory that holds cargo or rustc. */
function pathWithoutRust() {
  const exe = process.platform === 'win32' ? '.exe' : ''
  return (process.env.PATH ?? '')
    .split(delimiter)
    .filter((d) => d && !existsSync(join(d, `cargo${exe}`)) && !existsSync(join(d, `rustc${exe}`)))
    .join(delimiter)
}

const work = mkdtempSync(join(tmpdir(), 'hannoy-pack-'))
try {
  const { dir: platform, binary } = platformDir()
  const tarballs = join(work, 'tarballs')
  mkdirSync(tarballs)

  // The platform package as the release workflow assembles it: its package.json plus the binary.
  const staged = join(work, 'platform')
  mkdirSync(staged)
  for (const f of readdirSync(platform)) copyFileSync(join(platform, f), join(staged, f))
  copyFileSync(join(root, binary), join(staged, binary))

  const main = pack(root, tarballs)
  const plat = pack(staged, tarballs)
  const allowed = new Set(['index.js', 'binding.js', 'index.d.ts', 'README.md', 'LICENSE', 'package.json'])
  const extra = main.files.filter((f) => !allowed.has(f))
  if (extra.length) fail(`the main package holds files users do not need: ${extra.join(', ')}`)
  const platExtra = plat.files.filter((f) => f !== binary && f !== 'package.json' && f !== 'README.md')
  if (platExtra.length) fail(`the platform package holds more than the binary: ${platExtra.join(', ')}`)
  if (!plat.files.includes(binary)) fail(`the platform package lacks ${binary}`)

  // A fresh project, installed from the tarballs alone with no Rust toolchain in reach.
  const app = join(work, 'app')
  mkdirSync(app)
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'pack-test-app', private: true }, null, 2))
  const env = { ...process.env, PATH: pathWithoutRust(), CARGO: '', RUSTC: '', npm_config_offline: 'true' }
  for (const tool of ['cargo', 'rustc']) {
    try {
      run(tool, ['--version'], { env })
      fail(`${tool} is still reachable with the reduced PATH`)
    } catch (e) {
      if (e.code !== 'ENOENT' && e.status === 0) throw e
    }
  }
  npm(['install', '--no-audit', '--no-fund', '--ignore-scripts=false', main.path, plat.path], { cwd: app, env })

  // The README quick start exactly as written (ESM), and its CommonJS twin from examples/.
  // (a Windows checkout may have CRLF line ends)
  const readme = readFileSync(join(root, 'README.md'), 'utf8').replace(/\r\n/g, '\n')
  const quickStart = /## Quick start\s+```js\n([\s\S]*?)```/.exec(readme)?.[1]
  if (!quickStart) fail('README.md has no ```js block under "## Quick start"')
  for (const file of ['quickstart.mjs', 'quickstart.cjs']) {
    const cwd = join(app, file.replace('.', '-'))
    mkdirSync(cwd)
    if (file.endsWith('.mjs')) writeFileSync(join(cwd, file), quickStart)
    else copyFileSync(join(root, 'examples', file), join(cwd, file))
    // resolve 'hannoy' from the app's node_modules
    symlinkSync(join(app, 'node_modules'), join(cwd, 'node_modules'), 'junction')
    const out = run(process.execPath, [file], { cwd, env })
    if (!/id: 1, distance: 0\b/.test(out) || !/id: 3, distance: 0\.0\d/.test(out)) {
      fail(`${file} printed an unexpected result:\n${out}`)
    }
    console.log(`${file}: ${out.replace(/\s+/g, ' ').trim()}`)
  }

  // A TypeScript program against the installed types, under strict.
  const tsDir = join(app, 'ts')
  mkdirSync(tsDir)
  const source = readFileSync(join(root, '__test__', 'types-check.ts'), 'utf8').replace(
    "from '../index.js'",
    "from 'hannoy'",
  )
  if (!source.includes("from 'hannoy'")) fail('types-check.ts no longer imports ../index.js')
  writeFileSync(join(tsDir, 'usage.ts'), source)
  symlinkSync(join(app, 'node_modules'), join(tsDir, 'node_modules'), 'junction')
  writeFileSync(
    join(tsDir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        noEmit: true,
        target: 'es2022',
        module: 'nodenext',
        moduleResolution: 'nodenext',
        lib: ['es2022', 'dom'],
        types: [],
        skipLibCheck: false,
      },
      files: ['usage.ts'],
    }),
  )
  run(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', tsDir], { env })
  console.log('usage.ts: type-checks under strict against the installed package')

  const kb = (n) => `${(n / 1024).toFixed(1)} kB`
  const unpacked = statSync(join(root, binary)).size
  console.log(`main package ${pkg.name}: ${kb(main.size)} packed, ${main.files.length} files (${main.files.join(', ')})`)
  console.log(`platform package: ${kb(plat.size)} packed, binary ${kb(unpacked)} (${binary})`)
} finally {
  rmSync(work, { recursive: true, force: true })
}
