// Starts the stand-in model and two servers (e-mail codes off, and in the log) once for all
// browser tests; checks Chromium and the build first, with a message saying how to get them.

import { existsSync } from 'node:fs'
import { join } from 'node:path'
import type { TestProject } from 'vitest/node'

import { CHROMIUM } from './browser'
import { REPO, startServer, startUpstream, type Running } from './servers'

declare module 'vitest' {
  export interface ProvidedContext {
    upstreamUrl: string
    serverUrl: string
    consoleServerUrl: string
    consoleServerLogFile: string
  }
}

const running: Running[] = []

export async function setup(project: TestProject): Promise<void> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `${CHROMIUM} is missing. Install Debian's Chromium: \`sudo apt-get install -y chromium\` ` +
        '(`make test-web` does it when run as root). Do not run `npx playwright install`.',
    )
  }
  if (!existsSync(join(REPO, 'src/chatstream/web/index.html'))) {
    throw new Error('the web UI is not built: run `make web` first (or `make test-web`)')
  }
  const upstream = await startUpstream()
  running.push(upstream)
  const server = await startServer(upstream.url, 'off')
  running.push(server)
  const consoleServer = await startServer(upstream.url, 'console')
  running.push(consoleServer)
  project.provide('upstreamUrl', upstream.url)
  project.provide('serverUrl', server.url)
  project.provide('consoleServerUrl', consoleServer.url)
  project.provide('consoleServerLogFile', consoleServer.logPath ?? '')
}

export async function teardown(): Promise<void> {
  while (running.length) await running.pop()?.stop()
}
