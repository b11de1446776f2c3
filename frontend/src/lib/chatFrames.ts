// What one SSE event of a chatstream answer means (docs/api.md, "The stream").
// Unknown frames (tools, other event names, anything newer) map to null: ignored.

import type { SseEvent } from './sse'

/** A passage a document answer can cite as [n] (wire shape; api/types re-exports it). */
export interface Source {
  n: number
  documentId: string
  title: string
  section: string
  /** The chunk's id. */
  chunk: string
  /** At most 240 characters. */
  snippet: string
  /** The whole passage. */
  text: string
  /** Cosine similarity, 0..1. */
  score: number
}

export type ChatFrame =
  | { type: 'session'; sessionId: string }
  | { type: 'delta'; content: string }
  /** A document answer's passages (before its text); none found: an empty list and a note. */
  | { type: 'sources'; sources: Source[]; note: string | null }
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

function str(value: unknown): string {
  return typeof value === 'string' ? value : typeof value === 'number' ? String(value) : ''
}

/** One passage from the wire; null when it has no number to be cited by. */
export function toSource(value: unknown): Source | null {
  if (!isRecord(value)) return null
  const n = num(value.n)
  if (n === null) return null
  const text = str(value.text)
  return {
    n,
    documentId: str(value.documentId),
    title: str(value.title),
    section: str(value.section),
    chunk: str(value.chunk),
    snippet: str(value.snippet) || text.slice(0, 240),
    text,
    score: num(value.score) ?? 0,
  }
}

export function toSources(value: unknown): Source[] {
  if (!Array.isArray(value)) return []
  return value.map(toSource).filter((s): s is Source => s !== null)
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
    case 'sources':
      return {
        type: 'sources',
        sources: toSources(parsed.sources),
        note: typeof parsed.note === 'string' && parsed.note ? parsed.note : null,
      }
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
