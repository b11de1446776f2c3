// Messages as turns: a question and its answers. Asking the same question again right after
// its answer (Regenerate, Retry) adds a version of that answer instead of a new turn, so the
// server's history (where a regeneration is a new turn) reads the same after a reload.

import type { ChatMessage } from '@/stores/chats'

export interface Turn {
  key: string
  question: ChatMessage | null
  /** Versions of the answer, oldest first. */
  answers: ChatMessage[]
}

export function groupTurns(messages: readonly ChatMessage[]): Turn[] {
  const turns: Turn[] = []
  let current: Turn | null = null
  for (const message of messages) {
    if (message.role === 'user') {
      if (current?.question && current.answers.length > 0 && current.question.content === message.content) {
        continue // asked again: the next answer is another version
      }
      current = { key: message.key, question: message, answers: [] }
      turns.push(current)
    } else {
      if (current === null) {
        current = { key: message.key, question: null, answers: [] }
        turns.push(current)
      }
      current.answers.push(message)
    }
  }
  return turns
}
