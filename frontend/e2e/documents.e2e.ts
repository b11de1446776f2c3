// Documents against a real server: upload (checked in the page and by the server), indexing
// status until ready, a document answer with its sources, a passage opened from the list and
// from a citation, the sources again after a reload, the session marked, delete.

import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest'
import type { Browser, Page } from 'playwright-core'

import { ask, lastAnswer, launch, openPage, signedIn, waitForStatus, type Opened } from './support/browser'

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

async function fresh(): Promise<Page> {
  const serverUrl = inject('serverUrl')
  opened = await openPage(browser, serverUrl)
  await signedIn(opened.page, serverUrl)
  return opened.page
}

const GUIDE = [
  '# Frobnicator guide',
  '',
  '## Calibration',
  '',
  'The frobnicator must be calibrated every three weeks with the brass calibration key.',
  'Calibration takes about ten minutes and needs the blue reference plate.',
  '',
  '## Storage',
  '',
  'Store the frobnicator in a dry cupboard, away from magnets and direct sunlight.',
  '',
].join('\n')

function row(page: Page, name: string) {
  return page.locator(`[data-testid="document-row"][data-name="${name}"]`)
}

async function upload(page: Page, name: string, content: string, mimeType = 'text/plain'): Promise<void> {
  await page.getByTestId('documents-input').setInputFiles({ name, mimeType, buffer: Buffer.from(content) })
}

/** The text of the visible Element Plus message that contains `part`. */
async function toast(page: Page, part: string): Promise<string> {
  const message = page.locator('.el-message', { hasText: part }).first()
  await message.waitFor({ timeout: 10_000 })
  return (await message.textContent()) ?? ''
}

describe('documents', () => {
  it('uploads, indexes, answers with sources, opens a passage, keeps them after a reload, deletes', async () => {
    const page = await fresh()

    // -- the panel, and files refused in the page and by the server --------------------------
    await page.getByTestId('documents-open').click()
    await page.getByTestId('documents-drop').waitFor()
    await page.getByTestId('documents-empty').waitFor()

    await upload(page, 'tool.exe', 'MZ binary')
    expect(await toast(page, 'tool.exe')).toContain('cannot be read')
    await upload(page, 'fake.pdf', 'this is plain text, not a PDF at all')
    expect(await toast(page, 'fake.pdf')).toMatch(/not a PDF/i) // the server's own words
    expect(await page.getByTestId('document-row').count()).toBe(0)

    // -- a Markdown file: queued / indexing, then ready with its passages ---------------------
    await upload(page, 'frobnicator.md', GUIDE, 'text/markdown')
    await row(page, 'frobnicator.md').waitFor()
    await page.locator('[data-testid="document-row"][data-name="frobnicator.md"][data-status="ready"]').waitFor({ timeout: 60_000 })
    const status = (await row(page, 'frobnicator.md').getByTestId('document-status').textContent()) ?? ''
    expect(status).toMatch(/Ready · \d+ passages?/)
    await row(page, 'frobnicator.md').getByTestId('document-chunks').click()
    const chunks = page.locator('.chunks-dialog [data-testid="chunk"]')
    await chunks.first().waitFor()
    expect(await page.locator('.chunks-dialog').textContent()).toContain('brass calibration key')
    await page.keyboard.press('Escape')
    await page.locator('.chunks-dialog').waitFor({ state: 'hidden' })

    // the same bytes again: the same document, not a second one
    await upload(page, 'frobnicator.md', GUIDE, 'text/markdown')
    expect(await toast(page, 'already uploaded')).toContain('frobnicator.md')
    expect(await page.getByTestId('document-row').count()).toBe(1)
    await page.keyboard.press('Escape')
    await page.getByTestId('documents-drop').waitFor({ state: 'hidden' })

    // -- a document answer: sources under it, a passage opened from the list ------------------
    const documentsSwitch = page.getByTestId('documents-switch')
    await documentsSwitch.click()
    expect(await documentsSwitch.getAttribute('class')).toContain('is-checked')
    await ask(page, '/echo Calibrate the frobnicator every three weeks with the brass key [1].')
    await page.waitForURL('**/c/**')
    await waitForStatus(page, 'complete', 30_000)
    const sources = lastAnswer(page).getByTestId('sources')
    await sources.waitFor()
    const items = sources.getByTestId('source-item')
    expect(await items.count()).toBeGreaterThanOrEqual(1)
    const first = (await items.first().textContent()) ?? ''
    expect(first).toContain('[1]')
    expect(first).toContain('frobnicator.md')
    expect(first).toMatch(/\d\.\d\d/) // the score

    await items.first().click()
    const dialog = page.locator('.source-dialog')
    await dialog.getByTestId('source-text').waitFor()
    expect(await dialog.getByTestId('source-text').textContent()).toMatch(/frobnicator|calibrat/i)
    expect(await dialog.textContent()).toContain('[1] frobnicator.md')
    await page.keyboard.press('Escape')
    await dialog.waitFor({ state: 'hidden' })

    // the citation [1] in the answer (the stand-in model echoes it) opens the same passage
    const cite = lastAnswer(page).locator('.md .cite-link[data-cite="1"]')
    expect(await cite.count()).toBe(1)
    expect(await cite.getAttribute('role')).toBe('button')
    await cite.click()
    await dialog.getByTestId('source-text').waitFor()
    expect(await dialog.textContent()).toContain('[1] frobnicator.md')
    await page.keyboard.press('Escape')
    await dialog.waitFor({ state: 'hidden' })

    // the session is a documents session: marked in the list, the switch stays on
    await page.locator('[data-testid="session-item"] [data-testid="session-documents"]').first().waitFor()

    // -- after a reload: the sources come back with the history -------------------------------
    await page.reload()
    await lastAnswer(page).getByTestId('sources').waitFor()
    expect(await lastAnswer(page).getByTestId('source-item').count()).toBe(await items.count())
    expect(await page.getByTestId('documents-switch').getAttribute('class')).toContain('is-checked')
    await lastAnswer(page).getByTestId('source-item').first().click()
    await page.locator('.source-dialog').getByTestId('source-text').waitFor()
    await page.keyboard.press('Escape')

    // -- turning documents off for this session ---------------------------------------------
    const patched = page.waitForResponse((r) => r.request().method() === 'PATCH' && r.url().includes('/AI/chat/sessions/'))
    await page.getByTestId('documents-switch').click()
    expect((await patched).ok()).toBe(true)
    expect(await page.getByTestId('documents-switch').getAttribute('class')).not.toContain('is-checked')
    await ask(page, '/echo plain answer')
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="message-assistant"]').length === 2)
    await waitForStatus(page, 'complete')
    expect(await lastAnswer(page).getByTestId('sources').count()).toBe(0)

    // -- delete, with a confirmation -----------------------------------------------------------
    await page.getByTestId('documents-open').click()
    await row(page, 'frobnicator.md').getByTestId('document-delete').click()
    await page.locator('.delete-document-dialog').getByRole('button', { name: 'Delete' }).click()
    await row(page, 'frobnicator.md').waitFor({ state: 'detached' })
    await page.getByTestId('documents-empty').waitFor()
  })
})
