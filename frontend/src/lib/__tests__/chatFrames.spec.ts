import { describe, expect, it } from 'vitest'

import { toChatFrame } from '../chatFrames'

const message = (data: string) => ({ event: 'message', data, id: null })

describe('toChatFrame', () => {
  it('reads a sources frame, dropping passages without a number', () => {
    const source = {
      n: 1,
      documentId: 'd',
      title: 'a.md',
      section: 'A > B',
      chunk: 'c',
      snippet: 's',
      text: 'the passage',
      score: 0.9,
    }
    const frame = toChatFrame(message(JSON.stringify({ type: 'sources', sources: [source, { n: 'x' }, null] })))
    expect(frame).toEqual({ type: 'sources', sources: [source], note: null })
  })

  it('fills what a passage lacks, so the view never shows undefined', () => {
    const frame = toChatFrame(message(JSON.stringify({ type: 'sources', sources: [{ n: 2, documentId: 7, text: 'x'.repeat(300) }] })))
    expect(frame).toEqual({
      type: 'sources',
      sources: [{ n: 2, documentId: '7', title: '', section: '', chunk: '', snippet: 'x'.repeat(240), text: 'x'.repeat(300), score: 0 }],
      note: null,
    })
  })

  it('reads the note of a document answer that found nothing', () => {
    const note = 'No passage in your documents matches this question.'
    expect(toChatFrame(message(JSON.stringify({ type: 'sources', sources: [], note })))).toEqual({
      type: 'sources',
      sources: [],
      note,
    })
    expect(toChatFrame(message('{"type":"sources"}'))).toEqual({ type: 'sources', sources: [], note: null })
  })

  it('still ignores frames it does not know', () => {
    expect(toChatFrame(message('{"type":"tool_call","name":"x"}'))).toBeNull()
    expect(toChatFrame({ event: 'sources', data: '{}', id: null })).toBeNull()
  })
})
