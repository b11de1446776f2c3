// Sign-in: register (without and with the e-mail code), log out, log in, an expired token.

import { readFileSync } from 'node:fs'
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest'
import type { Browser } from 'playwright-core'

import { launch, openPage, registerByApi, uniqueName, type Opened } from './support/browser'

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

describe('sign-in', () => {
  it('registers, logs out and logs back in', async () => {
    opened = await openPage(browser, inject('serverUrl'))
    const { page } = opened
    await page.goto('/')
    await page.waitForURL('**/login')
    const name = uniqueName('reg')

    await page.getByRole('tab', { name: 'Create account' }).click()
    await expect(page.getByTestId('register-code').count()).resolves.toBe(0) // verification is off
    await page.getByTestId('register-email').fill(`${name}@example.com`)
    await page.getByTestId('register-username').fill(name)
    await page.getByTestId('register-password').fill('correct horse battery')
    await page.getByTestId('register-submit').click()
    await page.getByTestId('composer').waitFor()
    expect(await page.getByTestId('user').textContent()).toContain(name)

    await page.getByTestId('logout').click()
    await page.waitForURL('**/login')
    expect(await page.evaluate(() => localStorage.getItem('chatstream.token'))).toBeNull()

    // A wrong password is said, not swallowed.
    await page.getByTestId('login-username').fill(name)
    await page.getByTestId('login-password').fill('wrong password')
    await page.getByTestId('login-submit').click()
    await page.getByTestId('auth-error').waitFor()
    expect(await page.getByTestId('auth-error').textContent()).toMatch(/wrong username or password/i)

    await page.getByTestId('login-password').fill('correct horse battery')
    await page.getByTestId('login-password').press('Enter')
    await page.getByTestId('composer').waitFor()
    expect(new URL(page.url()).pathname).toBe('/')

    // The token is remembered across a reload.
    await page.reload()
    await page.getByTestId('composer').waitFor()
  })

  it('registers with the e-mail code when the server asks for one', async () => {
    opened = await openPage(browser, inject('consoleServerUrl'))
    const { page } = opened
    await page.goto('/login')
    const name = uniqueName('code')
    const email = `${name}@example.com`

    await page.getByRole('tab', { name: 'Create account' }).click()
    await page.getByTestId('register-code').waitFor()
    await page.getByTestId('register-email').fill(email)
    await page.getByTestId('send-code').click()
    await page.getByTestId('code-notice').waitFor()
    expect(await page.getByTestId('send-code').textContent()).toMatch(/Resend in \d+s/)

    const logFile = inject('consoleServerLogFile')
    let code: string | undefined
    const deadline = Date.now() + 10_000
    const pattern = new RegExp(`mail to ${email.replace('.', '\\.')}:.*verification code is (\\d{6})`)
    while (!code && Date.now() < deadline) {
      code = pattern.exec(readFileSync(logFile, 'utf8'))?.[1]
      if (!code) await page.waitForTimeout(100)
    }
    expect(code).toMatch(/^\d{6}$/)

    await page.getByTestId('register-password').fill('correct horse battery')
    // a wrong code first: the server's answer is shown
    await page.getByTestId('register-code').fill(code === '000000' ? '111111' : '000000')
    await page.getByTestId('register-submit').click()
    await page.getByTestId('auth-error').waitFor()
    await page.getByTestId('register-code').fill(code ?? '')
    await page.getByTestId('register-submit').click()
    await page.getByTestId('composer').waitFor()
  })

  it('sends an expired or bad token back to the login page, then back where it was', async () => {
    const serverUrl = inject('serverUrl')
    opened = await openPage(browser, serverUrl)
    const { page } = opened
    const user = await registerByApi(serverUrl)
    await page.goto('/login')
    await page.evaluate(() => {
      localStorage.setItem('chatstream.token', 'not-a-valid-token')
      localStorage.setItem('chatstream.username', 'ghost')
    })
    await page.goto('/c/some-session')
    await page.waitForURL('**/login?redirect=**')
    await page.getByTestId('expired').waitFor()

    await page.getByTestId('login-username').fill(user.username)
    await page.getByTestId('login-password').fill('correct horse battery')
    await page.getByTestId('login-submit').click()
    // back to the page it was on; that session is not ours, so the app says so and opens a new chat
    await page.getByTestId('composer').waitFor()
    await page.waitForURL((url) => url.pathname === '/')
  })

  it('follows the browser language on the login page', async () => {
    opened = await openPage(browser, inject('serverUrl'), { locale: 'zh-CN' })
    const { page } = opened
    await page.goto('/login')
    await page.getByRole('tab', { name: '注册' }).waitFor()
    expect(await page.evaluate(() => document.documentElement.lang)).toBe('zh-CN')
  })
})
