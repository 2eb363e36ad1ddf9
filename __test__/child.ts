// Child-process helpers: fork a fixture under __test__/fixtures and talk to it over IPC.
import { fork, spawn, type ChildProcess } from 'node:child_process'
import * as path from 'node:path'
import { FIXTURES } from './helpers'

export interface Msg {
  type: string
  [key: string]: unknown
}

export class Child {
  readonly proc: ChildProcess
  readonly messages: Msg[] = []
  stderr = ''
  stdout = ''
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  private waiters: Array<() => void> = []
  exitInfo: { code: number | null; signal: NodeJS.Signals | null } | null = null

  constructor(script: string, args: string[]) {
    this.proc = fork(path.join(FIXTURES, script), args, {
      execArgv: [],
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      env: { ...process.env },
    })
    this.proc.stdout?.on('data', (b: Buffer) => (this.stdout += b.toString()))
    this.proc.stderr?.on('data', (b: Buffer) => (this.stderr += b.toString()))
    this.proc.on('message', (m) => {
      this.messages.push(m as Msg)
      for (const w of this.waiters.splice(0)) w()
    })
    this.exited = new Promise((resolve) => {
      this.proc.on('exit', (code, signal) => {
        this.exitInfo = { code, signal }
        for (const w of this.waiters.splice(0)) w()
        resolve({ code, signal })
      })
    })
  }

  /** Resolves with the first message of `type` received after index `from` (default: any). */
  async next(type: string, timeoutMs = 60_000, from = 0): Promise<Msg> {
    const end = Date.now() + timeoutMs
    for (;;) {
      const found = this.messages.slice(from).find((m) => m.type === type)
      if (found) return found
      const fatal = this.messages.find((m) => m.type === 'fatal')
      if (fatal) throw new Error(`child failed: ${JSON.stringify(fatal)}\n${this.stderr}`)
      if (this.exitInfo) {
        throw new Error(`child exited (${JSON.stringify(this.exitInfo)}) before sending '${type}'\n${this.stderr}`)
      }
      const left = end - Date.now()
      if (left <= 0) throw new Error(`timed out waiting for '${type}' from the child\n${this.stderr}`)
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 1000))
        this.waiters.push(() => {
          clearTimeout(t)
          resolve()
        })
      })
    }
  }

  has(type: string): boolean {
    return this.messages.some((m) => m.type === type)
  }

  send(msg: unknown): void {
    if (this.proc.connected) this.proc.send(msg as never)
  }

  /** Asks for a fresh message of `type` by sending `request`, and waits for the reply. */
  async ask(request: unknown, type: string, timeoutMs = 30_000): Promise<Msg> {
    const from = this.messages.length
    this.send(request)
    return this.next(type, timeoutMs, from)
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.exitInfo === null) this.proc.kill(signal)
  }
}

/** Runs a fixture to completion (no IPC needed) and returns its output and exit status. */
export function runNode(
  file: string,
  args: string[],
  opts: { cwd?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [file, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      cwd: opts.cwd,
      env: opts.env ? { ...process.env, ...opts.env } : process.env,
    })
    let stdout = ''
    let stderr = ''
    p.stdout?.on('data', (b: Buffer) => (stdout += b.toString()))
    p.stderr?.on('data', (b: Buffer) => (stderr += b.toString()))
    const timer = setTimeout(() => {
      p.kill('SIGKILL')
      reject(new Error(`${file} timed out\n${stderr}`))
    }, opts.timeoutMs ?? 60_000)
    p.on('error', reject)
    p.on('exit', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr })
    })
  })
}
