import { defineStore } from 'pinia'
import { computed, ref, watch } from 'vue'

import { load, save } from '@/lib/storage'
import { browserLocale, type Locale } from '@/locales'

export type Theme = 'light' | 'dark' | 'system'

const KEYS = {
  locale: 'chatstream.locale',
  theme: 'chatstream.theme',
  model: 'chatstream.model',
  documents: 'chatstream.documents',
}

function storedLocale(): Locale | null {
  const value = load(KEYS.locale)
  return value === 'en' || value === 'zh-CN' ? value : null
}

function storedTheme(): Theme {
  const value = load(KEYS.theme)
  return value === 'light' || value === 'dark' ? value : 'system'
}

function systemDark(): MediaQueryList | null {
  return typeof window.matchMedia === 'function' ? window.matchMedia('(prefers-color-scheme: dark)') : null
}

export const useSettingsStore = defineStore('settings', () => {
  /** Follows the browser until the user picks one; then remembered. */
  const locale = ref<Locale>(storedLocale() ?? browserLocale())
  const theme = ref<Theme>(storedTheme())
  /** The model picked last (a `type` from /AI/chat/models), remembered. */
  const model = ref<string | null>(load(KEYS.model))
  /** "Use my documents" for new chats, remembered. */
  const documents = ref<boolean>(load(KEYS.documents) === '1')

  const media = systemDark()
  const prefersDark = ref(media?.matches ?? false)
  media?.addEventListener('change', (event) => {
    prefersDark.value = event.matches
  })
  const dark = computed(() => theme.value === 'dark' || (theme.value === 'system' && prefersDark.value))

  function setLocale(value: Locale): void {
    locale.value = value
    save(KEYS.locale, value)
  }

  function setTheme(value: Theme): void {
    theme.value = value
    save(KEYS.theme, value === 'system' ? null : value)
  }

  watch(model, (value) => save(KEYS.model, value))
  watch(documents, (value) => save(KEYS.documents, value ? '1' : null))

  return { locale, theme, model, documents, dark, setLocale, setTheme }
})
