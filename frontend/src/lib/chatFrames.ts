// What one SSE event of a chatstream answer means (docs/api.md, "The stream").
// Unknown frames (sources, tools, other event names, anything newer) map to null: ignored.

import type { SseEvent } from './sse'

export type ChatFrame =
  | { type: 'session'; sessionId: string }
  | { type: 'delta'; content: string }
  | { type: 'usage'; promptTokens: number | null; completionTokens: number | null; ms: number | null }
  | { type: 'stopped' }
  | { type: 'error'; code: number; message: string }
  | { type: 'done' }

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function num(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null
}

export function toChatFrame(event: SseEvent): ChatFrame | null {
  if (event.event !== 'message' && event.event !== 'error') return null // an event name we do not know
  const data = event.data
  if (data === '[DONE]') return { type: 'done' }
  let parsed: unknown
  try {
    parsed = JSON.parse(data)
  } catch {
    if (event.event === 'error') return { type: 'error', code: 5003, message: data || 'error' }
    return null
  }
  if (!isRecord(parsed)) return null
  const kind = parsed.type
  if (event.event === 'error' || kind === 'error') {
    const message = typeof parsed.message === 'string' ? parsed.message : 'error'
    return { type: 'error', code: num(parsed.code) ?? 5003, message }
  }
  if (kind === undefined && typeof parsed.sessionId === 'string') {
    return { type: 'session', sessionId: parsed.sessionId }
  }
  switch (kind) {
    case 'delta':
      return typeof parsed.content === 'string' ? { type: 'delta', content: parsed.content } : null
    case 'usage':
      return {
        type: 'usage',
        promptTokens: num(parsed.promptTokens),
        completionTokens: num(parsed.completionTokens),
        ms: num(parsed.ms),
      }
    case 'stopped':
      return { type: 'stopped' }
    default:
      return null
  }
}
