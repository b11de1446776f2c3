import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { mount } from '@vue/test-utils'
import { nextTick } from 'vue'

import MessageMarkdown from '../MessageMarkdown.vue'
import { loadMarkdown } from '@/composables/useMarkdown'
import { createAppI18n } from '@/locales'
import type { MarkdownRenderer } from '@/markdown/renderer'

let renderer: MarkdownRenderer
let frames: FrameRequestCallback[] = []

function flushFrame(): void {
  const pending = frames
  frames = []
  for (const fn of pending) fn(performance.now())
}

beforeAll(async () => {
  renderer = await loadMarkdown()
})

afterEach(() => {
  vi.unstubAllGlobals()
  vi.restoreAllMocks()
  frames = []
})

function mountWith(content: string) {
  vi.stubGlobal('requestAnimationFrame', (fn: FrameRequestCallback) => {
    frames.push(fn)
    return frames.length
  })
  vi.stubGlobal('cancelAnimationFrame', () => undefined)
  return mount(MessageMarkdown, { props: { content, streaming: true }, global: { plugins: [createAppI18n('en')] } })
}

describe('MessageMarkdown', () => {
  it('renders at most once per animation frame however many tokens arrive', async () => {
    const blocks = vi.spyOn(renderer, 'blocks')
    const wrapper = mountWith('')
    let text = ''
    for (let i = 0; i < 200; i++) {
      text += `w${i} `
      await wrapper.setProps({ content: text })
    }
    expect(blocks).toHaveBeenCalledTimes(1) // the first paint, on mount
    expect(frames).toHaveLength(1) // one frame requested for 200 updates
    flushFrame()
    expect(blocks).toHaveBeenCalledTimes(2)
    expect(wrapper.text()).toBe(text.trim())
  })

  it('replaces only the blocks that changed', async () => {
    const wrapper = mountWith('# Title\n\nFirst paragraph.\n\nSecond')
    const root = wrapper.element as HTMLElement
    const [title, first, second] = Array.from(root.children)
    await wrapper.setProps({ content: '# Title\n\nFirst paragraph.\n\nSecond, longer' })
    flushFrame()
    const after = Array.from(root.children)
    expect(after).toHaveLength(3)
    expect(after[0]).toBe(title) // same DOM nodes: not re-rendered
    expect(after[1]).toBe(first)
    expect(after[2]).not.toBe(second)
    expect(after[2]?.textContent?.trim()).toBe('Second, longer')
    await wrapper.setProps({ content: '# Title' })
    flushFrame()
    expect(root.children).toHaveLength(1)
  })

  it('labels copy buttons and renders raw HTML from the text as text', async () => {
    const wrapper = mountWith('```js\nlet a = 1\n```\n\n<img src=x onerror="window.__x=1">')
    await nextTick()
    expect(wrapper.find('button.code-copy').attributes('aria-label')).toBe('Copy code')
    expect(wrapper.find('img').exists()).toBe(false)
    expect(wrapper.text()).toContain('<img src=x onerror="window.__x=1">')
  })
})
