// LaTeX in Markdown: $…$ and \(…\) inline, $$…$$ and \[…\] as blocks. The TeX is handed to
// `render` (KaTeX once loaded); until then it shows as code. Dollar rules follow pandoc's, so
// "$5 and $10" stays text: an opening $ is followed by a non-space, a closing $ preceded by a
// non-space and not followed by a digit.

import type { MarkdownIt, StateBlock, StateInline } from 'markdown-it'

export type MathRender = (tex: string, displayMode: boolean) => string

function findInlineClose(src: string, from: number, max: number, close: string): number {
  for (let i = from; i < max; i++) {
    if (src.startsWith(close, i)) return i
    if (src[i] === '\\') i += 1 // an escaped character (\$) is not a delimiter
  }
  return -1
}

export function mathPlugin(md: MarkdownIt, render: MathRender): void {
  function inline(state: StateInline, silent: boolean): boolean {
    const src = state.src
    const start = state.pos
    const max = state.posMax
    let open: string
    let close: string
    let display = false
    if (src.startsWith('\\(', start)) {
      open = '\\('
      close = '\\)'
    } else if (src.startsWith('\\[', start)) {
      open = '\\['
      close = '\\]'
      display = true
    } else if (src.startsWith('$$', start)) {
      open = '$$'
      close = '$$'
      display = true
    } else if (src[start] === '$') {
      open = '$'
      close = '$'
    } else {
      return false
    }
    const from = start + open.length
    if (open === '$') {
      const next = src[from]
      if (next === undefined || /\s/.test(next) || next === '$') return false
    }
    let end = findInlineClose(src, from, max, close)
    if (open === '$') {
      // the closing $ must follow a non-space and not precede a digit
      while (end >= 0 && (/\s/.test(src[end - 1] ?? ' ') || /[0-9]/.test(src[end + 1] ?? ''))) {
        end = findInlineClose(src, end + 1, max, close)
      }
    }
    if (end < 0 || end === from) return false
    if (!silent) {
      const token = state.push(display ? 'math_inline_display' : 'math_inline', 'math', 0)
      token.content = src.slice(from, end)
      token.markup = open
    }
    state.pos = end + close.length
    return true
  }

  function block(state: StateBlock, startLine: number, endLine: number, silent: boolean): boolean {
    let pos = (state.bMarks[startLine] ?? 0) + (state.tShift[startLine] ?? 0)
    let max = state.eMarks[startLine] ?? 0
    if ((state.sCount[startLine] ?? 0) - state.blkIndent >= 4) return false
    const first = state.src.slice(pos, max)
    let close: string
    if (first.startsWith('$$')) close = '$$'
    else if (first.startsWith('\\[')) close = '\\]'
    else return false
    pos += 2
    let rest = state.src.slice(pos, max)
    let content: string
    let line = startLine
    const sameLine = rest.trimEnd().endsWith(close) && rest.trim().length >= close.length
    if (sameLine) {
      const trimmed = rest.trimEnd()
      content = trimmed.slice(0, trimmed.length - close.length)
      if (!content.trim()) return false
    } else {
      const parts = [rest]
      let found = false
      while (++line < endLine) {
        pos = (state.bMarks[line] ?? 0) + (state.tShift[line] ?? 0)
        max = state.eMarks[line] ?? 0
        if (pos < max && (state.sCount[line] ?? 0) < state.blkIndent) break
        rest = state.src.slice(pos, max)
        const trimmed = rest.trimEnd()
        if (trimmed.endsWith(close)) {
          parts.push(trimmed.slice(0, trimmed.length - close.length))
          found = true
          break
        }
        parts.push(state.src.slice(state.bMarks[line] ?? 0, max))
      }
      if (!found) return false // not closed (yet, while streaming): stays text
      content = parts.join('\n')
    }
    if (silent) return true
    const token = state.push('math_block', 'math', 0)
    token.block = true
    token.content = content.trim()
    token.markup = close === '$$' ? '$$' : '\\['
    token.map = [startLine, line + 1]
    state.line = line + 1
    return true
  }

  md.inline.ruler.before('escape', 'math_inline', inline)
  md.block.ruler.before('fence', 'math_block', block, { alt: ['paragraph', 'reference', 'blockquote', 'list'] })
  md.renderer.rules.math_inline = (tokens, idx) => render(tokens[idx]?.content ?? '', false)
  md.renderer.rules.math_inline_display = (tokens, idx) => render(tokens[idx]?.content ?? '', true)
  md.renderer.rules.math_block = (tokens, idx) =>
    `<div class="math-block">${render(tokens[idx]?.content ?? '', true)}</div>\n`
}
