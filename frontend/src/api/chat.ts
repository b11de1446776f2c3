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

export async function deleteSession(sessionId: string): Promise<void> {
  await request('DELETE', `${CHAT}/sessions/${encodeURIComponent(sessionId)}`)
}

export async function getHistory(sessionId: string): Promise<HistoryMessage[]> {
  return (await request<{ history: HistoryMessage[] }>('POST', `${CHAT}/history`, { sessionId })).history
}

export async function stopAnswer(sessionId: string): Promise<boolean> {
  return (await request<{ stopped: boolean }>('POST', `${CHAT}/stop`, { sessionId })).stopped
}

/** Asks a question; the answer streams as SSE (a new session first sends `{sessionId}`). */
export function streamQuestion(
  question: string,
  modelType: string,
  sessionId: string | null,
  signal: AbortSignal,
): ReturnType<typeof openStream> {
  return sessionId === null
    ? openStream('POST', `${CHAT}/send-stream-new-session`, { question, modelType }, { signal })
    : openStream('POST', `${CHAT}/send-stream`, { question, modelType, sessionId }, { signal })
}

/** Re-attaches to the session's answer: the frames after `after`, then live ones. */
export function followAnswer(sessionId: string, after: number, signal: AbortSignal): ReturnType<typeof openStream> {
  const query = new URLSearchParams({ sessionId, after: String(after) })
  return openStream('GET', `${CHAT}/stream?${query.toString()}`, undefined, {
    signal,
    headers: { 'Last-Event-ID': String(after) },
  })
}
