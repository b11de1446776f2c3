import { describe, expect, it } from 'vitest'

import { shortSection } from '../format'

describe('shortSection', () => {
  it('keeps a short heading path whole', () => {
    expect(shortSection('')).toBe('')
    expect(shortSection('Setup')).toBe('Setup')
    expect(shortSection('Setup > Install')).toBe('Setup > Install')
  })

  it('cuts a long one to its most specific headings', () => {
    expect(shortSection('Manual > Care > Descaling > Rinsing')).toBe('… > Descaling > Rinsing')
    expect(shortSection('A > B > C', 1)).toBe('… > C')
  })

  it('splits only at the separator, not at a ">" inside a heading', () => {
    expect(shortSection('Manual > Care > a>b comparisons')).toBe('… > Care > a>b comparisons')
  })
})
