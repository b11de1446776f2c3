import { describe, expect, it } from 'vitest'

import { groupTurns } from '../useTurns'
import type { ChatMessage } from '@/stores/chats'

let n = 0
function msg(role: 'user' | 'assistant', content: string): ChatMessage {
  n += 1
  return {
    key: `k${n}`,
    id: n,
    role,
    content,
    status: 'complete',
    model: null,
    error: null,
    errorCode: null,
    createdAt: '',
    completionTokens: null,
    sources: null,
    sourcesNote: null,
  }
}

describe('groupTurns', () => {
  it('pairs questions and answers', () => {
    const turns = groupTurns([msg('user', 'a'), msg('assistant', 'A'), msg('user', 'b'), msg('assistant', 'B')])
    expect(turns.map((t) => [t.question?.content, t.answers.map((m) => m.content)])).toEqual([
      ['a', ['A']],
      ['b', ['B']],
    ])
  })

  it('makes an answer to the same question asked again a version of the previous one', () => {
    const turns = groupTurns([
      msg('user', 'a'),
      msg('assistant', 'A1'),
      msg('user', 'a'),
      msg('assistant', 'A2'),
      msg('user', 'b'),
      msg('assistant', 'B'),
      msg('user', 'a'),
      msg('assistant', 'A3'),
    ])
    expect(turns.map((t) => [t.question?.content, t.answers.map((m) => m.content)])).toEqual([
      ['a', ['A1', 'A2']],
      ['b', ['B']],
      ['a', ['A3']],
    ])
  })

  it('keeps a question without an answer, and an answer without a question', () => {
    const turns = groupTurns([msg('assistant', 'orphan'), msg('user', 'q'), msg('user', 'q')])
    expect(turns.map((t) => [t.question?.content ?? null, t.answers.length])).toEqual([
      [null, 1],
      ['q', 0],
      ['q', 0],
    ])
  })
})
