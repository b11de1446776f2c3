// Real processes for the browser tests: the Python stand-in model upstream and `chatstream
// serve` (the repository's own .venv), each on a free port, with throwaway data directories.

import { spawn, type ChildProcess } from 'node:child_process'
import { createWriteStream, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

export const REPO = resolve(import.meta.dirname, '../../..')
const VENV_BIN = join(REPO, '.venv/bin')

export interface Running {
  url: string
  logPath: string | null
  log: () => string
  stop: () => Promise<void>
}

function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer()
    server.once('error', fail)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => (typeof address === 'object' && address ? done(address.port) : fail(new Error('no port'))))
    })
  })
}

function stopper(child: ChildProcess): () => Promise<void> {
  return () =>
    new Promise((done) => {
      if (child.exitCode !== null || child.signalCode !== null) return done()
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
      child.once('exit', () => {
        clearTimeout(timer)
        done()
      })
      child.kill('SIGTERM')
    })
}

export function requireVenv(): void {
  if (!existsSync(join(VENV_BIN, 'chatstream'))) {
    throw new Error(`${VENV_BIN}/chatstream is missing: run \`make setup\` in ${REPO} first`)
  }
}

/** The Python stand-in (tests/support/upstream.py): `/echo TEXT`, `/slow N MS`, `/fail N`, … */
export async function startUpstream(): Promise<Running> {
  requireVenv()
  const code = [
    'import sys',
    'from tests.support.upstream import StandInUpstream',
    'up = StandInUpstream(tokens=5, delay=0.0).start()',
    'print(up.base_url, flush=True)',
    'sys.stdin.read()', // until the test run closes our stdin (or kills us)
    'up.stop()',
  ].join('\n')
  const child = spawn(join(VENV_BIN, 'python'), ['-c', code], { cwd: REPO, stdio: ['pipe', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stderr?.on('data', (b: Buffer) => (err += b.toString()))
  const url = await new Promise<string>((done, fail) => {
    const timer = setTimeout(() => fail(new Error(`upstream did not start:\n${err}`)), 30_000)
    child.stdout?.on('data', (b: Buffer) => {
      out += b.toString()
      const line = out.split('\n')[0]
      if (out.includes('\n') && line) {
        clearTimeout(timer)
        done(line.trim())
      }
    })
    child.once('exit', (status) => {
      clearTimeout(timer)
      fail(new Error(`upstream exited with ${status}:\n${err}`))
    })
  })
  const stop = stopper(child)
  return {
    url,
    logPath: null,
    log: () => err,
    stop: async () => {
      child.stdin?.end()
      await stop()
    },
  }
}

/** `chatstream serve` against the stand-in, on a free port, in a temporary data directory. */
export async function startServer(upstreamUrl: string, emailVerification: 'off' | 'console'): Promise<Running> {
  requireVenv()
  const dataDir = mkdtempSync(join(tmpdir(), 'chatstream-e2e-'))
  const port = await freePort()
  const logPath = join(dataDir, 'server.log')
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('CHATSTREAM_')) env[k] = v
  Object.assign(env, {
    CHATSTREAM_DATA_DIR: dataDir,
    CHATSTREAM_PORT: String(port),
    CHATSTREAM_HOST: '127.0.0.1',
    CHATSTREAM_EMAIL_VERIFICATION: emailVerification,
    CHATSTREAM_ARGON2_TIME_COST: '1',
    CHATSTREAM_ARGON2_MEMORY_KIB: '8192',
    CHATSTREAM_OPENAI_BASE_URL: upstreamUrl,
    CHATSTREAM_OPENAI_MODEL: 'stand-in',
    CHATSTREAM_OPENAI_API_KEY: 'sk-e2e',
    CHATSTREAM_HEARTBEAT_S: '1',
  })
  const log = createWriteStream(logPath)
  const child = spawn(join(VENV_BIN, 'chatstream'), ['serve'], { cwd: dataDir, env, stdio: ['ignore', 'pipe', 'pipe'] })
  child.stdout?.pipe(log)
  child.stderr?.pipe(log)
  const url = `http://127.0.0.1:${port}`
  const readLog = (): string => (existsSync(logPath) ? readFileSync(logPath, 'utf8') : '')
  const deadline = Date.now() + 30_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`chatstream serve exited with ${child.exitCode}:\n${readLog()}`)
    try {
      const response = await fetch(`${url}/healthz`)
      if (response.ok) break
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`chatstream serve did not come up:\n${readLog()}`)
    await new Promise((r) => setTimeout(r, 100))
  }
  const stop = stopper(child)
  return {
    url,
    logPath,
    log: readLog,
    stop: async () => {
      await stop()
      log.end()
      rmSync(dataDir, { recursive: true, force: true })
    },
  }
}
