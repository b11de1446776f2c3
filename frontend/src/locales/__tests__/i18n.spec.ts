import { describe, expect, it } from 'vitest'

import { browserLocale, createAppI18n } from '..'

describe('i18n', () => {
  it('fills placeholders and picks plural forms with the runtime-only compiler', () => {
    const { t } = createAppI18n('en').global
    expect(t('chat.noMatches', { q: 'abc' })).toBe('No chat matches “abc”')
    expect(t('chat.tokens', { n: 1 }, 1)).toBe('1 token')
    expect(t('chat.tokens', { n: 7 }, 7)).toBe('7 tokens')
    expect(t('chat.newChat')).toBe('New chat')
  })

  it('has every English message in Chinese', () => {
    const i18n = createAppI18n('zh-CN')
    expect(i18n.global.t('chat.newChat')).toBe('新建对话')
    expect(i18n.global.t('chat.tokens', { n: 3 }, 3)).toBe('3 个 token')
    const keys = (o: object, prefix = ''): string[] =>
      Object.entries(o).flatMap(([k, v]) => (typeof v === 'object' && v ? keys(v as object, `${prefix}${k}.`) : [`${prefix}${k}`]))
    const messages = i18n.global.messages.value
    expect(keys(messages['zh-CN'])).toEqual(keys(messages.en))
  })

  it('follows the browser: any Chinese is zh-CN, else English', () => {
    expect(browserLocale(['zh-TW', 'en'])).toBe('zh-CN')
    expect(browserLocale(['de-DE', 'en-GB'])).toBe('en')
    expect(browserLocale(['fr'])).toBe('en')
  })
})
