// Markdown → sanitized HTML, in blocks. Loaded on demand (its own chunk): markdown-it,
// highlight.js and DOMPurify are not part of the first page load; KaTeX comes later still,
// the first time an answer contains math.
//
// Raw HTML in Markdown is off (html: false: a model's `<script>` is text), and every block's
// HTML goes through DOMPurify anyway, so neither model nor user text can run script.
//
// An answer is split into its top-level blocks (paragraphs, lists, code, tables, math). A block
// whose source did not change since the last call comes from a cache, so while an answer
// streams only its last block is rendered, highlighted and sanitized again.

import MarkdownIt from 'markdown-it'
import type { Token } from 'markdown-it'
import DOMPurify from 'dompurify'
import hljs from 'highlight.js/lib/common'

import { citePlugin } from './cite'
import { mathPlugin, type MathRender } from './math'

export interface RenderedBlock {
  /** Changes whenever the block's HTML would. */
  key: string
  html: string
}

export interface MarkdownRenderer {
  /** Top-level blocks, sanitized; unchanged blocks come from a cache. */
  blocks(src: string): RenderedBlock[]
  /** The whole text as one sanitized HTML string. */
  html(src: string): string
  /** Called when rendering changes for the same text (KaTeX arrived). Returns an unsubscribe. */
  onChange(listener: () => void): () => void
}

const CACHE_LIMIT = 4000

let purifyReady = false

function setUpPurify(): void {
  if (purifyReady) return
  purifyReady = true
  DOMPurify.addHook('afterSanitizeAttributes', (node) => {
    if (node.tagName === 'A' && node.hasAttribute('href')) {
      node.setAttribute('target', '_blank')
      node.setAttribute('rel', 'noopener noreferrer nofollow')
    }
    if (node.tagName === 'IMG') {
      node.setAttribute('loading', 'lazy')
      node.setAttribute('referrerpolicy', 'no-referrer')
    }
  })
}

export function sanitize(html: string): string {
  setUpPurify()
  return DOMPurify.sanitize(html, {
    ADD_ATTR: ['target'],
    FORBID_TAGS: ['style', 'form', 'input', 'textarea', 'select', 'iframe', 'object', 'embed'],
  })
}

export function createRenderer(): MarkdownRenderer {
  const listeners = new Set<() => void>()
  const cache = new Map<string, string>()
  let version = 0
  let renderMath: MathRender | null = null
  let mathLoading = false

  const md = new MarkdownIt({ html: false, linkify: true, breaks: true, typographer: false })
  const escape = md.utils.escapeHtml

  function loadMath(): void {
    if (mathLoading) return
    mathLoading = true
    import('./katex')
      .then((katex) => {
        renderMath = katex.renderMath
        version += 1
        cache.clear()
        for (const listener of listeners) listener()
      })
      .catch(() => {
        mathLoading = false // offline or the chunk is gone: math stays as code; try again later
      })
  }

  mathPlugin(md, (tex, displayMode) => {
    if (renderMath) return renderMath(tex, displayMode)
    loadMath()
    const source = escape(tex)
    return displayMode ? `<pre class="math-pending"><code>${source}</code></pre>` : `<code class="math-pending">${source}</code>`
  })

  citePlugin(md)

  md.renderer.rules.fence = (tokens, idx) => {
    const token = tokens[idx]
    if (!token) return ''
    const lang = token.info.trim().split(/\s+/)[0] ?? ''
    let body: string
    if (lang && hljs.getLanguage(lang)) {
      body = hljs.highlight(token.content, { language: lang, ignoreIllegals: true }).value
    } else {
      body = escape(token.content)
    }
    const label = escape(lang || 'text')
    const langClass = lang ? ` language-${escape(lang)}` : ''
    return (
      `<div class="code-block"><div class="code-head"><span class="code-lang">${label}</span>` +
      `<button type="button" class="code-copy"></button></div>` +
      `<pre><code class="hljs${langClass}">${body}</code></pre></div>\n`
    )
  }
  md.renderer.rules.table_open = () => '<div class="table-wrap"><table>\n'
  md.renderer.rules.table_close = () => '</table></div>\n'

  function blocks(src: string): RenderedBlock[] {
    const env = {}
    const tokens = md.parse(src, env)
    const lines = src.split('\n')
    const out: RenderedBlock[] = []
    let i = 0
    while (i < tokens.length) {
      const start = i
      let depth = 0
      do {
        depth += (tokens[i] as Token).nesting
        i += 1
      } while (depth > 0 && i < tokens.length)
      const slice = tokens.slice(start, i)
      const first = slice[0] as Token
      const source = first.map
        ? lines.slice(first.map[0], first.map[1]).join('\n')
        : slice.map((t) => t.content).join('\u0000')
      const key = `${version}\u0001${first.type}\u0001${first.markup}\u0001${source}`
      let html = cache.get(key)
      if (html === undefined) {
        html = sanitize(md.renderer.render(slice, md.options, env))
        if (cache.size >= CACHE_LIMIT) cache.clear()
        cache.set(key, html)
      }
      out.push({ key, html })
    }
    return out
  }

  return {
    blocks,
    html: (src) => sanitize(md.render(src)),
    onChange(listener) {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
  }
}
