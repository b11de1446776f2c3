import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { mount, type VueWrapper } from '@vue/test-utils'
import { nextTick } from 'vue'

import MessageItem from '../MessageItem.vue'
import type { Source } from '@/api/types'
import { loadMarkdown } from '@/composables/useMarkdown'
import { createAppI18n } from '@/locales'
import type { ChatMessage } from '@/stores/chats'

const SOURCES: Source[] = [
  {
    n: 1,
    documentId: 'd1',
    title: 'guide.md',
    section: 'Setup > Install',
    chunk: 'c1',
    snippet: 'Run make setup.',
    text: 'Run <b>make setup</b>.\nThen make run.',
    score: 0.8123,
  },
  { n: 2, documentId: 'd2', title: 'faq.html', section: '', chunk: 'c2', snippet: 'FAQ', text: 'FAQ text', score: 0.5 },
  {
    n: 3,
    documentId: 'd1',
    title: 'guide.md',
    section: 'Guide > Maintenance > Descaling > Rinsing',
    chunk: 'c3',
    snippet: 'Rinse twice.',
    text: 'Rinse twice.',
    score: 0.4,
  },
]

function answer(fields: Partial<ChatMessage>): ChatMessage {
  return {
    key: 'a1',
    id: 1,
    role: 'assistant',
    content: 'Install it with make setup [1], see also [2] and [7].',
    status: 'complete',
    model: '1',
    error: null,
    errorCode: null,
    createdAt: '',
    completionTokens: null,
    sources: null,
    sourcesNote: null,
    ...fields,
  }
}

let wrapper: VueWrapper | null = null

beforeAll(async () => {
  await loadMarkdown()
})

afterEach(() => {
  wrapper?.unmount()
  wrapper = null
  document.body.innerHTML = ''
  vi.unstubAllGlobals()
})

async function mountItem(message: ChatMessage): Promise<VueWrapper> {
  vi.stubGlobal('requestAnimationFrame', (fn: FrameRequestCallback) => setTimeout(() => fn(0), 0))
  vi.stubGlobal('cancelAnimationFrame', (id: number) => clearTimeout(id))
  wrapper = mount(MessageItem, {
    props: { message },
    attachTo: document.body,
    global: { plugins: [createAppI18n('en')] },
  })
  await nextTick()
  return wrapper
}

function dialogText(): string {
  return document.querySelector('[data-testid="source-dialog"]')?.textContent ?? ''
}

describe('sources under an answer', () => {
  it('lists the sources: [n] title — section and score', async () => {
    const w = await mountItem(answer({ sources: SOURCES }))
    const items = w.findAll('[data-testid="source-item"]')
    expect(items).toHaveLength(3)
    expect(items[0]?.text()).toContain('[1]')
    expect(items[0]?.text()).toContain('guide.md')
    expect(items[0]?.text()).toContain('— Setup > Install')
    expect(items[0]?.text()).toContain('0.81')
    expect(items[1]?.text()).not.toContain('—') // no section
    // a long heading path shows its most specific headings; the whole of it on hover
    expect(items[2]?.text()).toContain('— … > Descaling > Rinsing')
    expect(items[2]?.text()).not.toContain('Maintenance')
    expect(items[2]?.attributes('title')).toContain('Guide > Maintenance > Descaling > Rinsing')
    expect(w.find('[data-testid="sources-note"]').exists()).toBe(false)
  })

  it('opens the whole passage as plain text from the list', async () => {
    const w = await mountItem(answer({ sources: SOURCES }))
    await w.find('[data-testid="source-item"]').trigger('click')
    await vi.waitFor(() => expect(document.querySelector('[data-testid="source-text"]')).not.toBeNull())
    const text = document.querySelector('[data-testid="source-text"]')
    expect(text?.textContent).toBe('Run <b>make setup</b>.\nThen make run.')
    expect(text?.querySelector('b')).toBeNull() // server text is never HTML
    expect(dialogText()).toContain('[1] guide.md')
    expect(dialogText()).toContain('Setup > Install')
  })

  it('makes the citations with a source clickable, to the same passage', async () => {
    const w = await mountItem(answer({ sources: SOURCES }))
    await vi.waitFor(() => expect(w.findAll('.md span.cite')).toHaveLength(3))
    const links = w.findAll('.md span.cite-link')
    expect(links.map((l) => l.text())).toEqual(['[1]', '[2]']) // [7] has no source: plain text
    expect(links[1]?.attributes('role')).toBe('button')
    await links[1]?.trigger('click')
    await vi.waitFor(() => expect(document.querySelector('[data-testid="source-text"]')?.textContent).toBe('FAQ text'))
  })

  it('shows the note when no passage matched', async () => {
    const note = 'No passage in your documents matches this question.'
    const w = await mountItem(answer({ content: 'I do not know.', sources: [], sourcesNote: note }))
    expect(w.find('[data-testid="sources"]').exists()).toBe(false)
    expect(w.find('[data-testid="sources-note"]').text()).toBe(note)
  })

  it('shows nothing for an answer that did not use documents', async () => {
    const w = await mountItem(answer({}))
    expect(w.find('[data-testid="sources"]').exists()).toBe(false)
    expect(w.find('[data-testid="sources-note"]').exists()).toBe(false)
    await vi.waitFor(() => expect(w.findAll('.md span.cite')).toHaveLength(3))
    expect(w.findAll('.md span.cite-link')).toHaveLength(0)
  })
})
