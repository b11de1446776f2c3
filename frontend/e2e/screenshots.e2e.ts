// Screenshots of the main screens, desktop and phone, light and dark, against a scripted model.
// Written to e2e/.out/screenshots/; with CHATSTREAM_SCREENSHOTS=1 (npm run screenshots) also
// to docs/screenshots/, where the README shows them.

import { copyFileSync, mkdirSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Browser, Page } from 'playwright-core'

import { DESKTOP, PHONE, ask, lastAnswer, launch, openPage, registerByApi, waitForStatus } from './support/browser'
import { startScriptedModel, type ScriptedModel } from './support/scripted-model'
import { REPO, startServer, type Running } from './support/servers'

const OUT = resolve(import.meta.dirname, '.out/screenshots')
const DOCS = join(REPO, 'docs/screenshots')

const QUESTION = 'How do I reverse a list in Python? Show the options and what they cost.'
const ANSWER = [
  'There are three common ways. They differ in whether they **copy** the list:',
  '',
  '| Way | Copies? | Cost |',
  '|---|---|---|',
  '| `items.reverse()` | no, in place | $O(n)$ time, $O(1)$ space |',
  '| `items[::-1]` | yes, a new list | $O(n)$ time and space |',
  '| `reversed(items)` | no, an iterator | $O(1)$ until you loop |',
  '',
  '```python',
  'items = [1, 2, 3, 4]',
  'items.reverse()          # [4, 3, 2, 1], in place',
  'backwards = items[::-1]  # a reversed copy',
  'for x in reversed(items):',
  '    print(x)             # no copy at all',
  '```',
  '',
  'Use `reversed()` when you only need to **iterate**, slicing when you need a new list.',
].join('\n')

const MANUAL = 'espresso_manual.md'
const DOC_QUESTION = 'How do I descale the machine, and how long does it take?'
const DOC_ANSWER = [
  'When the display shows **CALC**, descaling is due [2]. Run it from the service menu:',
  '',
  '1. Fill the reservoir with 1 L of descaler solution and start `descale --start` [1].',
  '2. Rinse with two tanks of water (`descale --rinse`) [1].',
  '',
  'A full cycle takes about **45 minutes**. Use only citric-acid descaler: vinegar can harm the seals [1].',
].join('\n')

const OTHER_CHATS: Record<string, string> = {
  'Plan a three-day trip to Kyoto in autumn': 'Day 1: Higashiyama…',
  'Explain Server-Sent Events vs WebSockets': 'SSE is one-way, over plain HTTP…',
  '用三句话解释量子计算': '量子计算利用叠加与纠缠……',
}

let model: ScriptedModel
let server: Running
let browser: Browser
let token = ''
let username = ''

beforeAll(async () => {
  model = await startScriptedModel({ [QUESTION]: ANSWER, [DOC_QUESTION]: DOC_ANSWER, ...OTHER_CHATS })
  server = await startServer(model.url, 'off')
  browser = await launch()
  const user = await registerByApi(server.url, 'alice')
  token = user.token
  username = user.username
  // older chats first, so the main one is the newest
  for (const question of Object.keys(OTHER_CHATS)) {
    const response = await fetch(`${server.url}/api/v1/AI/chat/send-new-session`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
      body: JSON.stringify({ question, modelType: '1' }),
    })
    expect(response.status).toBe(200)
  }
})

afterAll(async () => {
  await browser?.close()
  await server?.stop()
  await model?.stop()
})

async function save(page: Page, name: string): Promise<void> {
  mkdirSync(OUT, { recursive: true })
  const file = join(OUT, `${name}.png`)
  // let transitions, fonts and KaTeX settle
  await page.evaluate(() => document.fonts.ready)
  await page.waitForTimeout(400)
  await page.screenshot({ path: file })
  if (process.env.CHATSTREAM_SCREENSHOTS === '1') {
    mkdirSync(DOCS, { recursive: true })
    copyFileSync(file, join(DOCS, `${name}.png`))
  }
}

async function chatPage(viewport: { width: number; height: number }, dark: boolean): Promise<Page> {
  const { page } = await openPage(browser, server.url, { viewport, dark })
  await page.goto('/login')
  await page.evaluate(
    ([t, u]) => {
      localStorage.setItem('chatstream.token', t ?? '')
      localStorage.setItem('chatstream.username', u ?? '')
    },
    [token, username],
  )
  return page
}

describe('screenshots', () => {
  let chatUrl = ''

  it('the chat page, desktop, light and dark', async () => {
    const page = await chatPage(DESKTOP, false)
    await page.goto('/')
    await ask(page, QUESTION)
    await waitForStatus(page, 'complete')
    await page.waitForURL('**/c/**')
    chatUrl = new URL(page.url()).pathname
    await page.locator('.katex').first().waitFor()
    await page.mouse.move(0, 0)
    await save(page, 'chat-desktop-light')
    await page.context().close()

    const dark = await chatPage(DESKTOP, true)
    await dark.goto(chatUrl)
    await dark.locator('.katex').first().waitFor()
    await save(dark, 'chat-desktop-dark')
    await dark.context().close()
  })

  it('the chat page and the sessions drawer, phone, light and dark', async () => {
    for (const dark of [false, true]) {
      const page = await chatPage(PHONE, dark)
      await page.goto(chatUrl)
      await page.locator('.katex').first().waitFor()
      await save(page, `chat-phone-${dark ? 'dark' : 'light'}`)
      if (!dark) {
        await page.getByTestId('menu').click()
        await page.getByTestId('session-item').first().waitFor()
        await save(page, 'sessions-phone-light')
      }
      await page.context().close()
    }
  })

  it('the login page, desktop light and phone dark, and Chinese', async () => {
    for (const [viewport, dark, name, locale] of [
      [DESKTOP, false, 'login-desktop-light', 'en-US'],
      [PHONE, true, 'login-phone-dark', 'en-US'],
      [DESKTOP, false, 'login-desktop-zh', 'zh-CN'],
    ] as const) {
      const { page } = await openPage(browser, server.url, { viewport, dark, locale })
      await page.goto('/login')
      await page.getByTestId('login-submit').waitFor()
      await save(page, name)
      await page.context().close()
    }
  })

  it('a document answer with its sources, and the documents drawer', async () => {
    const form = new FormData()
    const manual = readFileSync(join(REPO, 'tests/data/rag', MANUAL))
    form.append('file', new Blob([manual], { type: 'text/markdown' }), MANUAL)
    const headers = { Authorization: `Bearer ${token}` }
    const uploaded = await fetch(`${server.url}/api/v1/AI/documents`, { method: 'POST', headers, body: form })
    expect(uploaded.status).toBe(202)
    const { document } = (await uploaded.json()) as { document: { id: string } }
    await expect
      .poll(async () => {
        const response = await fetch(`${server.url}/api/v1/AI/documents/${document.id}`, { headers })
        return ((await response.json()) as { document: { status: string } }).document.status
      }, { timeout: 60_000, interval: 200 })
      .toBe('ready')

    const page = await chatPage(DESKTOP, false)
    await page.goto('/')
    await page.getByTestId('documents-switch').click()
    await ask(page, DOC_QUESTION)
    await waitForStatus(page, 'complete')
    await lastAnswer(page).getByTestId('source-item').first().waitFor()
    await page.mouse.move(0, 0)
    await save(page, 'documents-answer-desktop-light')

    await page.getByTestId('documents-open').click()
    await page.locator(`[data-testid="document-row"][data-name="${MANUAL}"][data-status="ready"]`).waitFor()
    await save(page, 'documents-drawer-desktop-light')
    await page.context().close()
  })

  it('the chat page in Chinese', async () => {
    const { page } = await openPage(browser, server.url, { viewport: DESKTOP, locale: 'zh-CN' })
    await page.goto('/login')
    await page.evaluate(
      ([t, u]) => {
        localStorage.setItem('chatstream.token', t ?? '')
        localStorage.setItem('chatstream.username', u ?? '')
      },
      [token, username],
    )
    await page.goto(chatUrl)
    await page.locator('.katex').first().waitFor()
    await page.getByText('新建对话').first().waitFor()
    await save(page, 'chat-desktop-zh')
    await page.context().close()
  })
})
