import { describe, expect, it, vi } from 'vitest'

import { createRenderer, sanitize } from '../renderer'

function dom(html: string): HTMLElement {
  const div = document.createElement('div')
  div.innerHTML = html
  return div
}

describe('Markdown renderer', () => {
  it('renders Markdown: headings, emphasis, lists, tables, links', () => {
    const md = createRenderer()
    const el = dom(md.html('# Title\n\n**bold** *it*\n\n- a\n- b\n\n| x | y |\n|---|---|\n| 1 | 2 |\n\n[l](https://e.x/)'))
    expect(el.querySelector('h1')?.textContent).toBe('Title')
    expect(el.querySelector('strong')?.textContent).toBe('bold')
    expect(el.querySelectorAll('li')).toHaveLength(2)
    expect(el.querySelector('.table-wrap table td')?.textContent).toBe('1')
    const a = el.querySelector('a')
    expect(a?.getAttribute('href')).toBe('https://e.x/')
    expect(a?.getAttribute('target')).toBe('_blank')
    expect(a?.getAttribute('rel')).toBe('noopener noreferrer nofollow')
  })

  it('highlights code and gives it a copy button', () => {
    const el = dom(createRenderer().html('```ts\nconst x: number = 1\n```\n\n```\nplain <b>\n```'))
    const blocks = el.querySelectorAll('.code-block')
    expect(blocks).toHaveLength(2)
    expect(blocks[0]?.querySelector('.code-lang')?.textContent).toBe('ts')
    expect(blocks[0]?.querySelector('code.hljs .hljs-keyword')?.textContent).toBe('const')
    expect(blocks[0]?.querySelector('button.code-copy')).not.toBeNull()
    expect(blocks[1]?.querySelector('code')?.textContent).toBe('plain <b>\n')
    expect(blocks[1]?.querySelector('b')).toBeNull()
  })

  it('shows HTML, script and event handlers from a model as text', () => {
    const md = createRenderer()
    const payload =
      '<script>alert(1)</script> <img src=x onerror="alert(2)"> <a href="javascript:alert(3)">x</a> ' +
      '[click](javascript:alert(4)) ![i](javascript:alert(5)) <svg onload=alert(6)> <iframe src=x>'
    const el = dom(md.html(payload))
    expect(el.querySelectorAll('script, img, iframe, svg')).toHaveLength(0)
    expect(el.querySelectorAll('[onerror], [onload], [onclick]')).toHaveLength(0)
    for (const a of el.querySelectorAll('a')) expect(a.getAttribute('href') ?? '').not.toMatch(/^javascript/i)
    expect(el.textContent).toContain('<script>alert(1)</script>')
    expect(el.textContent).toContain('<img src=x onerror="alert(2)">')
  })

  it('sanitizes whatever HTML reaches it', () => {
    const el = dom(
      sanitize('<p>ok</p><img src=x onerror=alert(1)><script>alert(2)</script><a href="javascript:x">l</a><style>*{}</style>'),
    )
    expect(el.querySelector('p')?.textContent).toBe('ok')
    expect(el.querySelector('script, style')).toBeNull()
    expect(el.querySelector('img')?.hasAttribute('onerror')).toBe(false)
    expect(el.querySelector('a')?.hasAttribute('href')).toBe(false)
  })

  it('keeps unchanged blocks and renders only the changed last one', () => {
    const md = createRenderer()
    const first = md.blocks('# Head\n\nOne paragraph.\n\nTwo')
    const second = md.blocks('# Head\n\nOne paragraph.\n\nTwo more words')
    expect(first).toHaveLength(3)
    expect(second).toHaveLength(3)
    expect(second[0]).toEqual(first[0])
    expect(second[1]).toEqual(first[1])
    expect(second[2]?.key).not.toBe(first[2]?.key)
    expect(second[2]?.html).toContain('Two more words')
    // an unfinished code fence is code from its first line, and stays one block as it grows
    const a = md.blocks('Intro\n\n```py\nx = 1')
    const b = md.blocks('Intro\n\n```py\nx = 1\ny = 2\n```')
    expect(a[0]).toEqual(b[0])
    expect(a).toHaveLength(2)
    expect(b[1]?.html).toContain('y')
  })

  it('renders the whole text and the blocks alike', () => {
    const md = createRenderer()
    const src = '# A\n\ntext with `code`\n\n1. x\n2. y\n\n> quote'
    expect(md.blocks(src).map((b) => b.html).join('')).toBe(md.html(src))
  })
})

describe('math', () => {
  it('leaves dollar amounts alone', () => {
    const el = dom(createRenderer().html('It costs $5 and $10, or $ 3 $.'))
    expect(el.querySelector('.math-pending, .katex')).toBeNull()
    expect(el.textContent).toContain('$5 and $10')
  })

  it('shows TeX as code until KaTeX arrives, then renders it', async () => {
    const md = createRenderer()
    const changed = vi.fn<() => void>()
    md.onChange(changed)
    const src = 'Inline $a^2$ and \\(b\\).\n\n$$\n\\frac{1}{2}\n$$\n\n\\[x\\]'
    const before = dom(md.html(src))
    expect(before.querySelectorAll('code.math-pending')).toHaveLength(2)
    expect(before.querySelectorAll('pre.math-pending')).toHaveLength(2)
    expect(before.textContent).toContain('\\frac{1}{2}')
    await vi.waitFor(() => expect(changed).toHaveBeenCalled())
    const after = dom(md.html(src))
    expect(after.querySelectorAll('.math-pending')).toHaveLength(0)
    expect(after.querySelectorAll('p .katex')).toHaveLength(2)
    expect(after.querySelectorAll('.math-block .katex-display')).toHaveLength(2)
    expect(after.querySelector('.katex-mathml math')).not.toBeNull() // MathML survives sanitizing
  })

  it('keeps an unclosed block as text while it streams', () => {
    const el = dom(createRenderer().html('$$\n\\frac{1}{2}'))
    expect(el.querySelector('.math-block')).toBeNull()
  })

  it('marks citations [n] in text, not in code, links or other brackets', () => {
    const md = createRenderer()
    const el = dom(
      md.html('Install it [1][2], see [12].\n\n`code [3]` and [a link [4]](https://e.x/) and [x] and [5](https://e.y/)\n\n```\n[6]\n```'),
    )
    const cites = Array.from(el.querySelectorAll('span.cite'))
    expect(cites.map((c) => c.getAttribute('data-cite'))).toEqual(['1', '2', '12'])
    expect(cites.map((c) => c.textContent)).toEqual(['[1]', '[2]', '[12]'])
    expect(el.querySelector('p')?.textContent).toBe('Install it [1][2], see [12].')
    expect(el.textContent).toContain('[x]')
    expect(el.querySelector('code')?.textContent).toBe('code [3]')
    expect(el.querySelector('a[href="https://e.x/"]')?.textContent).toBe('a link [4]')
    expect(el.querySelector('a[href="https://e.y/"]')?.textContent).toBe('5')
  })
})
