import { openStream, request } from './http'
import type { HistoryMessage, SessionPage } from './types'

const CHAT = '/AI/chat'

export function listSessions(limit: number, cursor: string | null): Promise<SessionPage> {
  const query = new URLSearchParams({ limit: String(limit) })
  if (cursor) query.set('cursor', cursor)
  return request<SessionPage>('GET', `${CHAT}/sessions?${query.toString()}`)
}

export async function renameSession(sessionId: string, name: string): Promise<string> {
  const answer = await request<{ name: string }>('PATCH', `${CHAT}/sessions/${encodeURIComponent(sessionId)}`, {
    name,
  })
  return answer.name
}

/** Turns "use my documents" on or off for the session's answers. */
export async function setSessionDocuments(sessionId: string, documents: boolean): Promise<boolean> {
  const answer = await request<{ documents?: boolean }>(
    'PATCH',
    `${CHAT}/sessions/${encodeURIComponent(sessionId)}`,
    { documents },
  )
  return typeof answer.documents === 'boolean' ? answer.documents : documents
}

export async function deleteSession(sessionId: string): Promise<void> {
  await request('DELETE', `${CHAT}/sessions/${encodeURIComponent(sessionId)}`)
}

/** The session's messages; `documents` when the server says whether the session uses them. */
export function getHistory(sessionId: string): Promise<{ history: HistoryMessage[]; documents?: boolean }> {
  return request<{ history: HistoryMessage[]; documents?: boolean }>('POST', `${CHAT}/history`, { sessionId })
}

export async function stopAnswer(sessionId: string): Promise<boolean> {
  return (await request<{ stopped: boolean }>('POST', `${CHAT}/stop`, { sessionId })).stopped
}

/**
 * Asks a question; the answer streams as SSE (a new session first sends `{sessionId}`).
 * `documents`: answer from the user's documents (a `sources` frame comes before the text).
 */
export function streamQuestion(
  question: string,
  modelType: string,
  sessionId: string | null,
  signal: AbortSignal,
  documents = false,
): ReturnType<typeof openStream> {
  const body: Record<string, unknown> = { question, modelType }
  if (documents) body.documents = true
  return sessionId === null
    ? openStream('POST', `${CHAT}/send-stream-new-session`, body, { signal })
    : openStream('POST', `${CHAT}/send-stream`, { ...body, sessionId }, { signal })
}

/** Re-attaches to the session's answer: the frames after `after`, then live ones. */
export function followAnswer(sessionId: string, after: number, signal: AbortSignal): ReturnType<typeof openStream> {
  const query = new URLSearchParams({ sessionId, after: String(after) })
  return openStream('GET', `${CHAT}/stream?${query.toString()}`, undefined, {
    signal,
    headers: { 'Last-Event-ID': String(after) },
  })
}
