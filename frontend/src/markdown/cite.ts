// Citations: a document answer cites passages as [n]. In plain text (not in code, not inside a
// link) each [n] becomes <span class="cite" data-cite="n">[n]</span>; the answer's view makes the
// ones with a matching source clickable. Only digits reach the attribute, and the HTML still
// goes through DOMPurify with the rest of the block.

import type { MarkdownIt, StateCore, Token } from 'markdown-it'

const CITE = /\[(\d{1,3})\]/g

function split(state: StateCore, token: Token): Token[] | null {
  const text = token.content
  CITE.lastIndex = 0
  if (!CITE.test(text)) return null
  CITE.lastIndex = 0
  const out: Token[] = []
  let last = 0
  for (let m = CITE.exec(text); m !== null; m = CITE.exec(text)) {
    if (m.index > last) {
      const before = new state.Token('text', '', 0)
      before.content = text.slice(last, m.index)
      out.push(before)
    }
    const cite = new state.Token('cite', '', 0)
    cite.content = m[1] ?? ''
    out.push(cite)
    last = m.index + m[0].length
  }
  if (last < text.length) {
    const after = new state.Token('text', '', 0)
    after.content = text.slice(last)
    out.push(after)
  }
  return out
}

export function citePlugin(md: MarkdownIt): void {
  md.core.ruler.push('cite', (state) => {
    for (const block of state.tokens) {
      if (block.type !== 'inline' || !block.children) continue
      const children: Token[] = []
      let inLink = 0
      for (const child of block.children) {
        if (child.type === 'link_open') inLink += 1
        else if (child.type === 'link_close') inLink -= 1
        const pieces = child.type === 'text' && inLink === 0 ? split(state, child) : null
        if (pieces) children.push(...pieces)
        else children.push(child)
      }
      block.children = children
    }
  })
  md.renderer.rules.cite = (tokens, idx) => {
    const n = tokens[idx]?.content ?? ''
    return /^\d+$/.test(n) ? `<span class="cite" data-cite="${n}">[${n}]</span>` : ''
  }
}
