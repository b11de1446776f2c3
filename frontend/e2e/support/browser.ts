// Debian's Chromium driven by playwright-core (never a downloaded browser), and page helpers.

import { chromium, type Browser, type BrowserContext, type Locator, type Page } from 'playwright-core'

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
]

export const DESKTOP = { width: 1280, height: 800 }
export const PHONE = { width: 390, height: 844 }

export function launch(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS })
}

export interface Opened {
  context: BrowserContext
  page: Page
  /** Uncaught errors and console errors in the page (a test fails on any). */
  errors: string[]
}

export async function openPage(
  browser: Browser,
  baseURL: string,
  options: { viewport?: { width: number; height: number }; locale?: string; dark?: boolean } = {},
): Promise<Opened> {
  const context = await browser.newContext({
    baseURL,
    viewport: options.viewport ?? DESKTOP,
    locale: options.locale ?? 'en-US',
    colorScheme: options.dark ? 'dark' : 'light',
    deviceScaleFactor: 1,
  })
  const page = await context.newPage()
  const errors: string[] = []
  page.on('pageerror', (err) => errors.push(`pageerror: ${err.message}`))
  page.on('console', (msg) => {
    // 4xx answers the tests provoke on purpose show up as console errors: keep real ones only.
    if (msg.type() === 'error' && !/Failed to load resource/.test(msg.text())) errors.push(`console: ${msg.text()}`)
  })
  return { context, page, errors }
}

let names = 0
export function uniqueName(prefix = 'u'): string {
  names += 1
  return `${prefix}${Date.now().toString(36)}${process.pid.toString(36)}${names}`
}

export async function registerByApi(serverUrl: string, name = uniqueName()): Promise<{ token: string; username: string }> {
  const response = await fetch(`${serverUrl}/api/v1/user/register`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ email: `${name}@example.com`, password: 'correct horse battery', username: name }),
  })
  const body = (await response.json()) as { token?: string; username?: string; status_msg?: string }
  if (!response.ok || !body.token) throw new Error(`register failed: ${response.status} ${body.status_msg}`)
  return { token: body.token, username: body.username ?? name }
}

/** Logged in as a fresh user (token put where the app keeps it), on the chat page. */
export async function signedIn(page: Page, serverUrl: string): Promise<{ token: string; username: string }> {
  const user = await registerByApi(serverUrl)
  await page.goto('/login')
  await page.evaluate(([token, name]) => {
    localStorage.setItem('chatstream.token', token ?? '')
    localStorage.setItem('chatstream.username', name ?? '')
  }, [user.token, user.username])
  await page.goto('/')
  await page.getByTestId('composer').waitFor()
  return user
}

export async function ask(page: Page, question: string): Promise<void> {
  const box = page.getByTestId('composer')
  await box.fill(question)
  await box.press('Enter')
}

export function answers(page: Page): Locator {
  return page.getByTestId('message-assistant')
}

export function lastAnswer(page: Page): Locator {
  return answers(page).last()
}

/** The text of the last answer's rendered Markdown (or its thinking dots: ''). */
export async function lastAnswerText(page: Page): Promise<string> {
  const md = lastAnswer(page).getByTestId('markdown')
  return (await md.count()) ? ((await md.textContent()) ?? '') : ''
}

export async function waitForStatus(page: Page, status: string, timeout = 20_000): Promise<void> {
  await page.waitForFunction(
    (want) => {
      const all = document.querySelectorAll('[data-testid="message-assistant"]')
      return all[all.length - 1]?.getAttribute('data-status') === want
    },
    status,
    { timeout },
  )
}

/** /slow N MS answers "w0 w1 … w(N-1) ". */
export function slowWords(n: number): string {
  return Array.from({ length: n }, (_, i) => `w${i}`).join(' ')
}
