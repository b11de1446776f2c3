// The Markdown renderer, loaded once on demand (a chunk of its own), shared by every message.

import { ref, shallowRef, type Ref, type ShallowRef } from 'vue'

import type { MarkdownRenderer } from '@/markdown/renderer'

const renderer = shallowRef<MarkdownRenderer | null>(null)
/** Bumped when the renderer's output changes for the same text (KaTeX arrived). */
const revision = ref(0)
let loading: Promise<MarkdownRenderer> | null = null

export function loadMarkdown(): Promise<MarkdownRenderer> {
  loading ??= import('@/markdown/renderer').then((module) => {
    const created = module.createRenderer()
    created.onChange(() => {
      revision.value += 1
    })
    renderer.value = created
    return created
  })
  loading.catch(() => {
    loading = null // try again next time (a deploy replaced the chunk, or offline)
  })
  return loading
}

export function useMarkdown(): { renderer: ShallowRef<MarkdownRenderer | null>; revision: Ref<number> } {
  if (renderer.value === null) void loadMarkdown().catch(() => undefined)
  return { renderer, revision }
}
