// Keeps a scrolling pane at its bottom while content grows, unless the reader scrolled up.

import { onBeforeUnmount, onMounted, ref, type Ref } from 'vue'

const NEAR_BOTTOM_PX = 80

export function useAutoScroll(
  pane: Ref<HTMLElement | null>,
  content: Ref<HTMLElement | null>,
): { following: Ref<boolean>; scrollToBottom: (smooth?: boolean) => void } {
  const following = ref(true)
  let observer: ResizeObserver | null = null

  function distance(el: HTMLElement): number {
    return el.scrollHeight - el.scrollTop - el.clientHeight
  }

  function onScroll(): void {
    const el = pane.value
    if (el) following.value = distance(el) < NEAR_BOTTOM_PX
  }

  function scrollToBottom(smooth = false): void {
    const el = pane.value
    if (!el) return
    following.value = true
    el.scrollTo({ top: el.scrollHeight, behavior: smooth ? 'smooth' : 'auto' })
  }

  onMounted(() => {
    pane.value?.addEventListener('scroll', onScroll, { passive: true })
    if (typeof ResizeObserver !== 'undefined' && content.value) {
      observer = new ResizeObserver(() => {
        if (following.value) scrollToBottom()
      })
      observer.observe(content.value)
    }
  })
  onBeforeUnmount(() => {
    pane.value?.removeEventListener('scroll', onScroll)
    observer?.disconnect()
  })

  return { following, scrollToBottom }
}
