// Sessions, messages by session and per-message status. The one place the chat UI reads from;
// useChatStream writes answers into it as they stream.

import { defineStore } from 'pinia'
import { computed, markRaw, ref } from 'vue'

import * as chatApi from '@/api/chat'
import { listModels } from '@/api/models'
import { ApiError } from '@/api/http'
import type { HistoryMessage, MessageStatus, ModelInfo, SessionSummary, Source } from '@/api/types'

/** `pending`: asked, no token yet. The rest are the server's statuses. */
export type UiStatus = MessageStatus | 'pending'

export interface ChatMessage {
  key: string
  id: number | null
  role: 'user' | 'assistant'
  content: string
  status: UiStatus
  model: string | null
  error: string | null
  errorCode: number | null
  createdAt: string
  completionTokens: number | null
  /** A document answer: the passages it could cite as [n] (null: not a document answer). */
  sources: Source[] | null
  /** A document answer for which no passage matched: why there are no sources. */
  sourcesNote: string | null
}

/** An answer this tab is reading. */
export interface RunningAnswer {
  sessionKey: string
  messageKey: string
  controller: AbortController
  lastEventId: number
  /** Stop was pressed before the server named the session: stop as soon as it does. */
  stopRequested: boolean
}

export type HistoryState = 'loading' | 'loaded' | 'missing' | 'error'

export const PAGE_SIZE = 30
const TITLE_CHARS = 60 // as the server's title_from

export function titleFrom(question: string): string {
  const line = question.split(/\s+/).filter(Boolean).join(' ')
  return line.length <= TITLE_CHARS ? line : line.slice(0, TITLE_CHARS - 1).trimEnd() + '…'
}

let localKeys = 0
function localKey(prefix: string): string {
  localKeys += 1
  return `${prefix}-${localKeys}`
}

function fromHistory(m: HistoryMessage): ChatMessage {
  return {
    key: `m-${m.id}`,
    id: m.id,
    role: m.is_user ? 'user' : 'assistant',
    content: m.content,
    status: m.status,
    model: m.model,
    error: m.error,
    errorCode: null,
    createdAt: m.createdAt,
    completionTokens: m.completionTokens ?? null,
    sources: Array.isArray(m.sources) ? m.sources : m.sourcesNote ? [] : null,
    sourcesNote: m.sourcesNote ?? null,
  }
}

export const useChatsStore = defineStore('chats', () => {
  const sessions = ref<SessionSummary[]>([])
  const nextCursor = ref<string | null>(null)
  const sessionsLoading = ref(false)
  const sessionsLoaded = ref(false)
  const sessionsError = ref<string | null>(null)

  /** Messages by session id, or by a draft key until the server names the new session. */
  const conversations = ref<Record<string, ChatMessage[]>>({})
  const history = ref<Record<string, HistoryState>>({})
  const running = ref<Record<string, RunningAnswer>>({})

  /** "Use my documents" of sessions the loaded list does not show (opened by address, just set). */
  const documentFlags = ref<Record<string, boolean>>({})

  const models = ref<ModelInfo[]>([])
  const modelsLoaded = ref(false)

  const defaultModel = computed(() => models.value.find((m) => m.isDefault) ?? models.value[0] ?? null)

  // -- sessions ------------------------------------------------------------------------------------

  function upsertSession(summary: SessionSummary, toTop = false): void {
    const index = sessions.value.findIndex((s) => s.sessionId === summary.sessionId)
    if (index >= 0) {
      if (toTop) {
        sessions.value.splice(index, 1)
        sessions.value.unshift(summary)
      } else {
        sessions.value[index] = summary
      }
    } else if (toTop) {
      sessions.value.unshift(summary)
    } else {
      sessions.value.push(summary)
    }
  }

  /** The server listed these sessions: its `documents` is the truth from now on. */
  function forgetFlags(listed: readonly SessionSummary[]): void {
    for (const s of listed) if (typeof s.documents === 'boolean') delete documentFlags.value[s.sessionId]
  }

  async function loadSessions(): Promise<void> {
    sessionsLoading.value = true
    sessionsError.value = null
    try {
      const page = await chatApi.listSessions(PAGE_SIZE, null)
      // Keep sessions this tab created that the page does not show yet (none, normally).
      const seen = new Set(page.sessions.map((s) => s.sessionId))
      const localOnly = sessions.value.filter((s) => !seen.has(s.sessionId) && running.value[s.sessionId])
      sessions.value = [...localOnly, ...page.sessions]
      forgetFlags(page.sessions)
      nextCursor.value = page.nextCursor
      sessionsLoaded.value = true
    } catch (err) {
      sessionsError.value = err instanceof Error ? err.message : String(err)
      throw err
    } finally {
      sessionsLoading.value = false
    }
  }

  async function loadMoreSessions(): Promise<void> {
    if (sessionsLoading.value || nextCursor.value === null) return
    sessionsLoading.value = true
    try {
      const page = await chatApi.listSessions(PAGE_SIZE, nextCursor.value)
      for (const s of page.sessions) upsertSession(s)
      forgetFlags(page.sessions)
      nextCursor.value = page.nextCursor
    } finally {
      sessionsLoading.value = false
    }
  }

  /** Re-reads the first page (titles and order after an answer), keeping what is loaded below. */
  async function refreshSessions(): Promise<void> {
    const page = await chatApi.listSessions(PAGE_SIZE, null)
    const fresh = new Set(page.sessions.map((s) => s.sessionId))
    const rest = sessions.value.filter((s) => !fresh.has(s.sessionId))
    sessions.value = [...page.sessions, ...rest]
    forgetFlags(page.sessions)
    if (!sessionsLoaded.value) nextCursor.value = page.nextCursor
    sessionsLoaded.value = true
  }

  function sessionName(sessionId: string): string | null {
    return sessions.value.find((s) => s.sessionId === sessionId)?.name ?? null
  }

  async function renameSession(sessionId: string, name: string): Promise<void> {
    const saved = await chatApi.renameSession(sessionId, name)
    const found = sessions.value.find((s) => s.sessionId === sessionId)
    if (found) found.name = saved
  }

  /** Whether the session's answers use the user's documents. */
  function documentsOf(sessionId: string): boolean {
    return documentFlags.value[sessionId] ?? sessions.value.find((s) => s.sessionId === sessionId)?.documents ?? false
  }

  function noteDocuments(sessionId: string, on: boolean): void {
    documentFlags.value[sessionId] = on
    const found = sessions.value.find((s) => s.sessionId === sessionId)
    if (found) found.documents = on
  }

  /** Turns "use my documents" on or off for a session (shown at once, undone if the server refuses). */
  async function setDocuments(sessionId: string, on: boolean): Promise<void> {
    const before = documentsOf(sessionId)
    noteDocuments(sessionId, on)
    try {
      noteDocuments(sessionId, await chatApi.setSessionDocuments(sessionId, on))
    } catch (err) {
      noteDocuments(sessionId, before)
      throw err
    }
  }

  async function deleteSession(sessionId: string): Promise<void> {
    await chatApi.deleteSession(sessionId)
    running.value[sessionId]?.controller.abort()
    forgetSession(sessionId)
  }

  function forgetSession(sessionId: string): void {
    sessions.value = sessions.value.filter((s) => s.sessionId !== sessionId)
    delete conversations.value[sessionId]
    delete history.value[sessionId]
    delete running.value[sessionId]
    delete documentFlags.value[sessionId]
  }

  function touchSession(sessionId: string): void {
    const found = sessions.value.find((s) => s.sessionId === sessionId)
    if (found) upsertSession({ ...found, updatedAt: new Date().toISOString() }, true)
  }

  // -- messages ------------------------------------------------------------------------------------

  function messagesOf(sessionKey: string): ChatMessage[] {
    return conversations.value[sessionKey] ?? []
  }

  async function loadHistory(sessionId: string, force = false): Promise<HistoryState> {
    const state = history.value[sessionId]
    if (!force && (state === 'loaded' || state === 'loading')) return state
    if (running.value[sessionId]) return 'loaded' // this tab is writing it: what it has is newer
    history.value[sessionId] = 'loading'
    try {
      const found = await chatApi.getHistory(sessionId)
      if (!running.value[sessionId]) conversations.value[sessionId] = found.history.map(fromHistory)
      if (typeof found.documents === 'boolean') noteDocuments(sessionId, found.documents)
      history.value[sessionId] = 'loaded'
    } catch (err) {
      if (!(err instanceof ApiError && err.httpStatus === 404)) {
        history.value[sessionId] = 'error'
        throw err
      }
      forgetSession(sessionId) // deleted, or never ours: the server does not say which
      history.value[sessionId] = 'missing'
    }
    return history.value[sessionId] ?? 'error'
  }

  function newDraftKey(): string {
    return localKey('draft')
  }

  /** The question and an empty answer; returns the answer's key. */
  function addTurn(sessionKey: string, question: string, model: string): string {
    const now = new Date().toISOString()
    const list = conversations.value[sessionKey] ?? (conversations.value[sessionKey] = [])
    list.push({
      key: localKey('q'),
      id: null,
      role: 'user',
      content: question,
      status: 'complete',
      model,
      error: null,
      errorCode: null,
      createdAt: now,
      completionTokens: null,
      sources: null,
      sourcesNote: null,
    })
    const answerKey = localKey('a')
    list.push({
      key: answerKey,
      id: null,
      role: 'assistant',
      content: '',
      status: 'pending',
      model,
      error: null,
      errorCode: null,
      createdAt: now,
      completionTokens: null,
      sources: null,
      sourcesNote: null,
    })
    return answerKey
  }

  function findMessage(sessionKey: string, messageKey: string): ChatMessage | undefined {
    const list = conversations.value[sessionKey]
    if (!list) return undefined
    for (let i = list.length - 1; i >= 0; i--) {
      const m = list[i]
      if (m && m.key === messageKey) return m
    }
    return undefined
  }

  /** The server named the new session: the draft's messages move under its id. */
  function bindSession(draftKey: string, sessionId: string, question: string, documents = false): void {
    const list = conversations.value[draftKey]
    if (list) {
      conversations.value[sessionId] = list
      delete conversations.value[draftKey]
    }
    const run = running.value[draftKey]
    if (run) {
      run.sessionKey = sessionId
      running.value[sessionId] = run
      delete running.value[draftKey]
    }
    history.value[sessionId] = 'loaded'
    const now = new Date().toISOString()
    upsertSession({ sessionId, name: titleFrom(question), createdAt: now, updatedAt: now, documents }, true)
  }

  function appendDelta(sessionKey: string, messageKey: string, text: string, replace = false): void {
    const message = findMessage(sessionKey, messageKey)
    if (!message) return
    message.content = replace ? text : message.content + text
    if (message.status === 'pending' || message.status === 'interrupted') message.status = 'streaming'
  }

  function finishMessage(sessionKey: string, messageKey: string, patch: Partial<ChatMessage>): void {
    const message = findMessage(sessionKey, messageKey)
    if (message) Object.assign(message, patch)
  }

  function setRunning(run: RunningAnswer): void {
    running.value[run.sessionKey] = { ...run, controller: markRaw(run.controller) }
  }

  function runningOf(sessionKey: string): RunningAnswer | undefined {
    return running.value[sessionKey]
  }

  function clearRunning(sessionKey: string, messageKey: string): void {
    if (running.value[sessionKey]?.messageKey === messageKey) delete running.value[sessionKey]
  }

  function noteEventId(sessionKey: string, id: number): void {
    const run = running.value[sessionKey]
    if (run) run.lastEventId = id
  }

  async function stop(sessionId: string): Promise<void> {
    await chatApi.stopAnswer(sessionId)
  }

  // -- models --------------------------------------------------------------------------------------

  async function loadModels(): Promise<ModelInfo[]> {
    models.value = await listModels()
    modelsLoaded.value = true
    return models.value
  }

  /** Logout: drop everything and stop reading answers. */
  function reset(): void {
    for (const run of Object.values(running.value)) run.controller.abort()
    sessions.value = []
    nextCursor.value = null
    sessionsLoaded.value = false
    conversations.value = {}
    history.value = {}
    running.value = {}
    documentFlags.value = {}
    models.value = []
    modelsLoaded.value = false
  }

  return {
    sessions,
    nextCursor,
    sessionsLoading,
    sessionsLoaded,
    sessionsError,
    conversations,
    history,
    running,
    models,
    modelsLoaded,
    defaultModel,
    loadSessions,
    loadMoreSessions,
    refreshSessions,
    sessionName,
    renameSession,
    deleteSession,
    documentsOf,
    setDocuments,
    forgetSession,
    touchSession,
    messagesOf,
    loadHistory,
    newDraftKey,
    addTurn,
    findMessage,
    bindSession,
    appendDelta,
    finishMessage,
    setRunning,
    runningOf,
    clearRunning,
    noteEventId,
    stop,
    loadModels,
    reset,
  }
})
