import { onBeforeUnmount, ref, type Ref } from 'vue'

/** Whether a media query matches, kept up to date. */
export function useMediaQuery(query: string): Ref<boolean> {
  const media = typeof window.matchMedia === 'function' ? window.matchMedia(query) : null
  const matches = ref(media?.matches ?? false)
  const update = (event: MediaQueryListEvent): void => {
    matches.value = event.matches
  }
  media?.addEventListener('change', update)
  onBeforeUnmount(() => media?.removeEventListener('change', update))
  return matches
}
