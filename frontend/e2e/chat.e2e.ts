// The chat page against a real server and the stand-in model: streaming, Markdown, sanitizing,
// stop, regenerate, errors, sessions, language, reload during an answer, the phone layout.

import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest'
import type { Browser, Page } from 'playwright-core'

import {
  PHONE,
  answers,
  ask,
  lastAnswer,
  lastAnswerText,
  launch,
  openPage,
  registerByApi,
  signedIn,
  slowWords,
  waitForStatus,
  type Opened,
} from './support/browser'

let browser: Browser
let opened: Opened | null = null

beforeAll(async () => {
  browser = await launch()
})
afterAll(async () => {
  await browser.close()
})
afterEach(async () => {
  if (opened) {
    expect(opened.errors).toEqual([])
    await opened.context.close()
    opened = null
  }
})

async function fresh(options: Parameters<typeof openPage>[2] = {}): Promise<Page> {
  const serverUrl = inject('serverUrl')
  opened = await openPage(browser, serverUrl, options)
  await signedIn(opened.page, serverUrl)
  return opened.page
}

/** Samples the last answer's text until `until` holds; returns every distinct text seen. */
async function watchAnswer(page: Page, until: (text: string) => boolean, timeout = 20_000): Promise<string[]> {
  const seen: string[] = []
  const deadline = Date.now() + timeout
  for (;;) {
    const text = (await lastAnswerText(page)).trim()
    if (seen[seen.length - 1] !== text) seen.push(text)
    if (until(text)) return seen
    if (Date.now() > deadline) throw new Error(`gave up waiting; saw ${JSON.stringify(seen)}`)
    await page.waitForTimeout(30)
  }
}

function sessionItems(page: Page) {
  return page.getByTestId('session-item')
}

describe('chat', () => {
  it('streams an answer token by token into a new session', async () => {
    const page = await fresh()
    await ask(page, '/slow 12 200')
    // The user's question shows at once, the answer grows word by word.
    await page.getByTestId('message-user').getByText('/slow 12 200').waitFor()
    await page.getByTestId('stop').waitFor()
    const seen = await watchAnswer(page, (text) => text === slowWords(12))
    const partial = seen.filter((t) => t.length > 0 && t !== slowWords(12))
    expect(partial.length).toBeGreaterThanOrEqual(4) // several intermediate states, not one jump
    for (const text of partial) expect(slowWords(12).startsWith(text)).toBe(true)
    expect(partial.some((t) => t.includes('w3') && !t.includes('w9'))).toBe(true)
    await waitForStatus(page, 'complete')
    await page.getByTestId('send').waitFor()

    // The new session got its address and a title in the sidebar.
    await page.waitForURL('**/c/**')
    await expect(sessionItems(page).first().textContent()).resolves.toContain('/slow 12 200')
    expect(await page.getByTestId('chat-title').textContent()).toContain('/slow 12 200')

    // A second question in the same session keeps the first turn.
    await ask(page, '/echo second answer')
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="message-assistant"]').length === 2)
    await waitForStatus(page, 'complete')
    expect(await lastAnswerText(page)).toContain('second answer')
    expect(await answers(page).first().textContent()).toContain('w11')
    expect(await sessionItems(page).count()).toBe(1)
  })

  it('renders Markdown, code with a copy button, tables and math', async () => {
    const page = await fresh()
    await opened?.context.grantPermissions(['clipboard-read', 'clipboard-write'])
    await ask(
      page,
      [
        '/echo # Heading',
        '',
        'Some **bold**, *italic* and `inline code`, a [link](https://example.com).',
        '',
        '- one',
        '- two',
        '',
        '| a | b |',
        '|---|---|',
        '| 1 | 2 |',
        '',
        '```python',
        'def hello():',
        '    return 42',
        '```',
        '',
        'Inline $a^2+b^2=c^2$ and a block:',
        '',
        '$$\\int_0^1 x\\,dx = \\frac12$$',
      ].join('\n'),
    )
    await waitForStatus(page, 'complete')
    const md = lastAnswer(page).getByTestId('markdown')
    await md.locator('h1', { hasText: 'Heading' }).waitFor()
    expect(await md.locator('strong').textContent()).toBe('bold')
    expect(await md.locator('em').textContent()).toBe('italic')
    expect(await md.locator('code').first().textContent()).toBe('inline code')
    expect(await md.locator('li').count()).toBe(2)
    expect(await md.locator('table td').allTextContents()).toEqual(['1', '2'])
    const link = md.locator('a[href="https://example.com"]')
    expect(await link.getAttribute('target')).toBe('_blank')
    expect(await link.getAttribute('rel')).toContain('noopener')
    // code: highlighted, labelled, copyable
    const code = md.locator('.code-block')
    expect(await code.locator('.code-lang').textContent()).toBe('python')
    expect(await code.locator('.hljs-keyword').first().textContent()).toBe('def')
    await code.locator('button.code-copy').click()
    await page.getByText('Copied').first().waitFor()
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe('def hello():\n    return 42\n')
    // math: KaTeX arrives as a chunk of its own and renders both forms
    await md.locator('.katex').first().waitFor()
    expect(await md.locator('.math-block .katex-display').count()).toBe(1)
    expect(await md.locator('p .katex').count()).toBe(1)

    // Copying a whole message
    await lastAnswer(page).getByTestId('copy').click()
    expect(await page.evaluate(() => navigator.clipboard.readText())).toContain('# Heading')
  })

  it('shows a script or onerror payload from the model as text and runs nothing', async () => {
    const page = await fresh()
    const payload =
      '<script>window.__pwned=1</script> <img src=x onerror="window.__pwned=2"> ' +
      '[click](javascript:window.__pwned=3) <svg onload="window.__pwned=4"></svg>'
    await ask(page, `/echo ${payload}`)
    await waitForStatus(page, 'complete')
    const md = lastAnswer(page).getByTestId('markdown')
    const text = (await md.textContent()) ?? ''
    expect(text).toContain('<script>window.__pwned=1</script>')
    expect(text).toContain('<img src=x onerror="window.__pwned=2">')
    // the user's own message is text too
    expect(await page.getByTestId('message-user').textContent()).toContain('<script>window.__pwned=1</script>')
    await page.waitForTimeout(300) // give an image error handler time to fire, if there were one
    const dom = await page.evaluate(() => ({
      pwned: (window as unknown as { __pwned?: number }).__pwned ?? null,
      scripts: document.querySelectorAll('.message script').length,
      images: document.querySelectorAll('.message img').length,
      handlers: document.querySelectorAll('[onerror], [onload], [onclick]').length,
      jsLinks: document.querySelectorAll('a[href^="javascript"]').length,
      svgs: document.querySelectorAll('.message svg[onload]').length,
    }))
    expect(dom).toEqual({ pwned: null, scripts: 0, images: 0, handlers: 0, jsLinks: 0, svgs: 0 })
  })

  it('stops an answer and keeps what was written, marked stopped', async () => {
    const page = await fresh()
    await ask(page, '/slow 300 100')
    await watchAnswer(page, (text) => text.includes('w3'))
    await page.getByTestId('stop').click()
    await waitForStatus(page, 'stopped')
    await page.getByTestId('send').waitFor()
    const kept = (await lastAnswerText(page)).trim()
    expect(kept).toMatch(/^w0 w1 w2 w3/)
    expect(kept).not.toContain('w299')
    expect(await lastAnswer(page).getByTestId('status-tag').textContent()).toContain('Stopped')
    // the server saved it the same way: after a reload the status is still shown
    await page.waitForTimeout(300)
    await page.reload()
    await waitForStatus(page, 'stopped')
    expect((await lastAnswerText(page)).trim()).toBe(kept)
    expect(await lastAnswer(page).getByTestId('status-tag').textContent()).toContain('Stopped')
  })

  it('continues an answer after a reload, without losing or repeating a word', async () => {
    const page = await fresh()
    await ask(page, '/slow 40 100')
    await watchAnswer(page, (text) => text.includes('w6'))
    await page.waitForURL('**/c/**')
    await page.reload()
    // After the reload the same answer is still being written, then completes exactly.
    await page.getByTestId('stop').waitFor()
    const seen = await watchAnswer(page, (text) => text === slowWords(40))
    expect(seen.some((t) => t.length > 0 && t !== slowWords(40))).toBe(true)
    for (const text of seen) expect(slowWords(40).startsWith(text)).toBe(true)
    await waitForStatus(page, 'complete')
    expect(await answers(page).count()).toBe(1)
    expect((await lastAnswerText(page)).trim()).toBe(slowWords(40))
  })

  it('regenerates the last answer as a new version, and retries a failed one', async () => {
    const page = await fresh()
    await ask(page, '/echo first version')
    await waitForStatus(page, 'complete')
    await lastAnswer(page).getByTestId('regenerate').click()
    await page.getByTestId('versions').waitFor()
    await waitForStatus(page, 'complete')
    expect(await page.getByTestId('versions').textContent()).toContain('2 / 2')
    expect(await page.getByTestId('message-user').count()).toBe(1) // one question, two answers
    await page.getByTestId('versions').getByRole('button').first().click()
    expect(await page.getByTestId('versions').textContent()).toContain('1 / 2')

    // A model failing mid-answer: the error shows on the message, with a retry.
    await ask(page, '/fail 3')
    await waitForStatus(page, 'error')
    const error = lastAnswer(page).getByTestId('message-error')
    expect(await error.textContent()).toMatch(/failed/i)
    expect(await lastAnswerText(page)).toContain('tok0')
    await error.getByTestId('retry').click()
    await page.waitForFunction(() => document.querySelector('[data-testid="versions"]:last-of-type') !== null)
    await waitForStatus(page, 'error')
    expect(await lastAnswer(page).getByTestId('versions').textContent()).toContain('2 / 2')

    // A model refusing before the first token (HTTP error before the stream) shows too.
    await ask(page, '/status 500')
    await waitForStatus(page, 'error')
    await lastAnswer(page).getByTestId('message-error').waitFor()
  })

  it('renames, searches and deletes sessions', async () => {
    const page = await fresh()
    for (const q of ['/echo alpha', '/echo beta']) {
      await page.getByTestId('new-chat').click()
      await ask(page, q)
      await waitForStatus(page, 'complete')
      await page.waitForURL('**/c/**')
    }
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="session-item"]').length === 2)
    // newest first
    expect(await page.getByTestId('session-name').allTextContents()).toEqual(['/echo beta', '/echo alpha'])

    // rename the older one
    const alpha = sessionItems(page).filter({ hasText: '/echo alpha' })
    await alpha.hover()
    await alpha.getByTestId('session-more').click()
    await page.locator('[data-testid="session-rename"]:visible').click()
    const input = page.locator('.rename-dialog input')
    await input.fill('Renamed chat ✓')
    await page.locator('.rename-dialog').getByRole('button', { name: 'Save' }).click()
    await sessionItems(page).filter({ hasText: 'Renamed chat ✓' }).waitFor()

    // search by title
    await page.getByTestId('session-search').fill('renamed')
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="session-item"]').length === 1)
    await page.getByTestId('session-search').fill('')

    // the name is the server's: still there after a reload
    await page.reload()
    await sessionItems(page).filter({ hasText: 'Renamed chat ✓' }).waitFor()

    // delete the current one, with a confirmation
    const current = sessionItems(page).filter({ hasText: '/echo beta' })
    await current.click()
    await page.getByText('beta', { exact: true }).first().waitFor()
    await current.hover()
    await current.getByTestId('session-more').click()
    await page.locator('[data-testid="session-delete"]:visible').click()
    await page.locator('.delete-dialog').getByRole('button', { name: 'Delete' }).click()
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="session-item"]').length === 1)
    await page.waitForURL((url) => url.pathname === '/')
    await page.reload()
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="session-item"]').length === 1)
    expect(await page.getByTestId('session-name').allTextContents()).toEqual(['Renamed chat ✓'])
  })

  it('switches the language, and remembers it', async () => {
    const page = await fresh()
    await page.getByText('New chat').first().waitFor()
    await page.getByTestId('language').click()
    await page.getByTestId('language-zh-CN').click()
    await page.getByText('新建对话').first().waitFor()
    expect(await page.getByTestId('composer').getAttribute('placeholder')).toContain('Enter 发送')
    expect(await page.evaluate(() => document.documentElement.lang)).toBe('zh-CN')
    await page.reload()
    await page.getByText('新建对话').first().waitFor()
    await page.getByTestId('language').click()
    await page.getByTestId('language-en').click()
    await page.getByText('New chat').first().waitFor()
  })

  it('switches to dark mode and back, and remembers it', async () => {
    const page = await fresh()
    const dark = (): Promise<boolean> => page.evaluate(() => document.documentElement.classList.contains('dark'))
    expect(await dark()).toBe(false)
    await page.getByTestId('theme').click()
    await page.getByTestId('theme-dark').click()
    expect(await dark()).toBe(true)
    const background = await page.evaluate(() => getComputedStyle(document.body).backgroundColor)
    expect(background).not.toBe('rgb(255, 255, 255)')
    await page.reload()
    await page.getByTestId('composer').waitFor()
    expect(await dark()).toBe(true)
    await page.getByTestId('theme').click()
    await page.getByTestId('theme-light').click()
    expect(await dark()).toBe(false)
  })

  it('loads more sessions when the list is scrolled to its end', async () => {
    const serverUrl = inject('serverUrl')
    opened = await openPage(browser, serverUrl)
    const { page } = opened
    const { token } = await signedIn(page, serverUrl)
    for (let i = 0; i < 34; i++) {
      const response = await fetch(`${serverUrl}/api/v1/AI/chat/send-new-session`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
        body: JSON.stringify({ question: `/echo chat number ${i}`, modelType: '1' }),
      })
      expect(response.status).toBe(200)
    }
    await page.reload()
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="session-item"]').length === 30)
    expect(await page.getByTestId('session-name').first().textContent()).toBe('/echo chat number 33')
    await sessionItems(page).last().scrollIntoViewIfNeeded()
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="session-item"]').length === 34)
    expect(await page.getByTestId('session-name').last().textContent()).toBe('/echo chat number 0')
  })

  it('sends on Enter and keeps Shift+Enter for a new line', async () => {
    const page = await fresh()
    const box = page.getByTestId('composer')
    await box.fill('/echo line one')
    await box.press('Shift+Enter')
    await box.type('line two')
    expect(await box.inputValue()).toBe('/echo line one\nline two')
    await box.press('Enter')
    await waitForStatus(page, 'complete')
    expect(await box.inputValue()).toBe('')
    expect(await page.getByTestId('message-user').textContent()).toContain('line one\nline two')
  })

  it('works at phone width: the sessions open in a drawer', async () => {
    const page = await fresh({ viewport: PHONE })
    expect(await page.getByTestId('sidebar').count()).toBe(0)
    await ask(page, '/echo hello from a phone')
    await waitForStatus(page, 'complete')
    await page.getByTestId('menu').click()
    await page.getByTestId('sidebar').waitFor()
    await sessionItems(page).first().waitFor()
    await page.getByTestId('new-chat').click()
    await page.getByTestId('empty').waitFor()
    const width = await page.evaluate(() => document.documentElement.scrollWidth)
    expect(width).toBeLessThanOrEqual(PHONE.width) // nothing wider than the screen
  })
})

describe('page weight', () => {
  it('loads little before the first answer: Markdown, highlighting and KaTeX come later', async () => {
    const serverUrl = inject('serverUrl')
    const weigh = async (path: string, ready: (page: Page) => Promise<unknown>) => {
      opened = await openPage(browser, serverUrl)
      const { page, context } = opened
      if (path !== '/login') {
        const user = await registerByApi(serverUrl)
        await context.addInitScript(
          ([token, name]) => {
            localStorage.setItem('chatstream.token', token ?? '')
            localStorage.setItem('chatstream.username', name ?? '')
          },
          [user.token, user.username],
        )
      }
      const sizes: { url: string; type: string; bytes: number }[] = []
      page.on('requestfinished', (request) => {
        void request.sizes().then((s) => {
          const url = new URL(request.url()).pathname
          const type = url.endsWith('.js') ? 'js' : url.endsWith('.css') ? 'css' : 'other'
          sizes.push({ url, type, bytes: Math.max(0, s.responseBodySize) })
        })
      })
      await page.goto(path)
      await ready(page)
      await page.waitForTimeout(300)
      const sum = (type: string) => sizes.filter((s) => s.type === type).reduce((a, s) => a + s.bytes, 0)
      const lazy = sizes.filter((s) => /\/(renderer|katex)-/.test(s.url))
      await opened.context.close()
      opened = null
      return { js: sum('js'), css: sum('css'), lazy }
    }
    // The chat page without messages: what a returning user loads (gzip, as served).
    const chat = await weigh('/', (page) => page.getByTestId('composer').waitFor())
    // loaded in idle time after the page is up, not on the way to it:
    const chatFirst = { js: chat.js - chat.lazy.reduce((a, s) => a + s.bytes, 0), css: chat.css }
    const login = await weigh('/login', (page) => page.getByTestId('login-submit').waitFor())
    console.log(
      `first load, gzip: chat page JS ${(chatFirst.js / 1024).toFixed(1)} kB + CSS ${(chatFirst.css / 1024).toFixed(1)} kB; ` +
        `login page JS ${(login.js / 1024).toFixed(1)} kB + CSS ${(login.css / 1024).toFixed(1)} kB`,
    )
    expect(login.lazy).toEqual([])
    expect(chatFirst.js).toBeLessThan(190 * 1024)
    expect(chatFirst.css).toBeLessThan(30 * 1024)
    expect(login.js).toBeLessThan(180 * 1024)
  })
})

describe('serving', () => {
  it('serves the app at any client route, never over the API', async () => {
    const serverUrl = inject('serverUrl')
    const index = await fetch(`${serverUrl}/c/anything`)
    expect(index.status).toBe(200)
    expect(index.headers.get('cache-control')).toBe('no-cache')
    const html = await index.text()
    const asset = /src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1]
    expect(asset).toBeTruthy()
    const js = await fetch(`${serverUrl}${asset}`, { headers: { 'Accept-Encoding': 'gzip' } })
    expect(js.status).toBe(200)
    expect(js.headers.get('cache-control')).toContain('immutable')
    expect(js.headers.get('content-type')).toContain('javascript')
    const api = await fetch(`${serverUrl}/api/v1/nothing-here`)
    expect(api.status).toBe(404)
    expect(((await api.json()) as { status_code: number }).status_code).toBe(2001)
    expect((await fetch(`${serverUrl}/api/v1/user/login`)).status).toBe(405)
    expect((await fetch(`${serverUrl}/healthz`)).headers.get('content-type')).toContain('json')
    expect((await fetch(`${serverUrl}/assets/missing.js`)).status).toBe(404)
    const sse = await fetch(`${serverUrl}/api/v1/AI/chat/stream?sessionId=x`, { headers: { 'Accept-Encoding': 'gzip' } })
    expect(sse.headers.get('content-encoding')).toBeNull()
  })
})
