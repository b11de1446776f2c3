// KaTeX and its CSS (with fonts): a chunk of its own, loaded the first time an answer has math.
import katex from 'katex'
import 'katex/dist/katex.min.css'

export function renderMath(tex: string, displayMode: boolean): string {
  return katex.renderToString(tex, {
    displayMode,
    throwOnError: false,
    output: 'htmlAndMathml',
    trust: false,
    strict: 'ignore',
    maxExpand: 1000,
    maxSize: 50,
  })
}
