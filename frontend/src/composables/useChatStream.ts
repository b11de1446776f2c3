// THE streaming composable: the only place that reads an answer's SSE stream. Send, regenerate,
// retry and resume (after a reload) all go through `drive`, which writes into the chats store
// as frames arrive. If the connection drops mid-answer it re-attaches with the last event id,
// so no token is lost or repeated.

import { ApiError, CODE_NETWORK } from '@/api/http'
import { followAnswer, streamQuestion } from '@/api/chat'
import { toChatFrame } from '@/lib/chatFrames'
import { readSse } from '@/lib/sse'
import { useChatsStore, type ChatMessage } from '@/stores/chats'

type Opener = (signal: AbortSignal) => Promise<Response & { body: ReadableStream<Uint8Array> }>

interface Target {
  sessionKey: string
  messageKey: string
  /** Null until the server named a new session. */
  sessionId: string | null
}

export interface SendOptions {
  /** The server named the new session (its first frame). */
  onSession?: (sessionId: string, draftKey: string) => void
  /** Called at once with the key the messages are kept under (a draft key for a new session). */
  onStart?: (sessionKey: string) => void
  /** Answer from the user's documents (sent as `documents: true`; a new session keeps it on). */
  documents?: boolean
}

const MAX_REATTACH = 5

function isAbort(err: unknown): boolean {
  return err instanceof DOMException && err.name === 'AbortError'
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms)
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer)
        resolve()
      },
      { once: true },
    )
  })
}

function lastOf<T>(items: readonly T[], test: (item: T) => boolean): T | undefined {
  for (let i = items.length - 1; i >= 0; i--) {
    const item = items[i] as T
    if (test(item)) return item
  }
  return undefined
}

export function useChatStream() {
  const chats = useChatsStore()

  async function drive(
    target: Target,
    controller: AbortController,
    open: Opener,
    options: { replace?: boolean; question?: string; onSession?: SendOptions['onSession']; documents?: boolean } = {},
  ): Promise<void> {
    const { signal } = controller
    const isNew = target.sessionId === null
    let replace = options.replace ?? false
    let lastId = 0
    let stopped = false
    let ended = false
    let attempts = 0
    let opener = open

    const patch = (fields: Partial<ChatMessage>): void =>
      chats.finishMessage(target.sessionKey, target.messageKey, fields)
    const fail = (code: number, message: string): void => patch({ status: 'error', errorCode: code, error: message })

    const bind = (sessionId: string): void => {
      if (target.sessionId !== null) return
      const draftKey = target.sessionKey
      chats.bindSession(draftKey, sessionId, options.question ?? '', options.documents ?? false)
      target.sessionId = sessionId
      target.sessionKey = sessionId
      options.onSession?.(sessionId, draftKey)
      if (chats.runningOf(sessionId)?.stopRequested) void chats.stop(sessionId).catch(() => controller.abort())
    }

    try {
      while (!ended) {
        let response: Response & { body: ReadableStream<Uint8Array> }
        try {
          response = await opener(signal)
        } catch (err) {
          if (isAbort(err) || signal.aborted) return
          if (!(err instanceof ApiError)) throw err
          if ((attempts > 0 || options.replace) && err.httpStatus === 404 && target.sessionId !== null) {
            // The answer finished long enough ago to be retired: the saved one is the truth.
            chats.clearRunning(target.sessionKey, target.messageKey)
            await chats.loadHistory(target.sessionId, true)
            return
          }
          if (attempts > 0 && err.code === CODE_NETWORK && attempts < MAX_REATTACH) {
            attempts += 1
            await sleep(500 * attempts, signal)
            continue
          }
          const sessionId = err.extra.sessionId
          if (typeof sessionId === 'string') bind(sessionId) // the question was saved before the model refused
          fail(err.code, err.message)
          return
        }
        try {
          for await (const event of readSse(response.body)) {
            if (event.id !== null) {
              const id = Number(event.id)
              if (Number.isFinite(id)) {
                lastId = id
                chats.noteEventId(target.sessionKey, id)
              }
            }
            const frame = toChatFrame(event)
            if (frame === null) continue
            switch (frame.type) {
              case 'session':
                bind(frame.sessionId)
                break
              case 'delta':
                chats.appendDelta(target.sessionKey, target.messageKey, frame.content, replace)
                replace = false
                break
              case 'sources':
                patch({ sources: frame.sources, sourcesNote: frame.note })
                break
              case 'usage':
                patch({ completionTokens: frame.completionTokens })
                break
              case 'stopped':
                stopped = true
                patch({ status: 'stopped' })
                break
              case 'error':
                fail(frame.code, frame.message)
                ended = true
                break
              case 'done':
                if (!stopped) patch({ status: 'complete' })
                ended = true
                break
            }
            if (ended) break
          }
        } catch (err) {
          if (isAbort(err) || signal.aborted) return
          // the connection broke mid-answer: re-attach below
        }
        if (ended || signal.aborted) break
        // The stream ended before the answer did: re-attach after the last frame we have.
        if (target.sessionId === null || attempts >= MAX_REATTACH) {
          fail(CODE_NETWORK, 'the connection to the server was lost')
          return
        }
        attempts += 1
        await sleep(Math.min(400 * attempts, 2000), signal)
        if (signal.aborted) return
        const sessionId = target.sessionId
        const after = lastId
        opener = (s) => followAnswer(sessionId, after, s)
      }
    } catch (err) {
      if (!isAbort(err)) fail(CODE_NETWORK, err instanceof Error ? err.message : String(err))
    } finally {
      chats.clearRunning(target.sessionKey, target.messageKey)
      const message = chats.findMessage(target.sessionKey, target.messageKey)
      if (message && (message.status === 'pending' || message.status === 'streaming') && signal.aborted) {
        message.status = 'stopped'
      }
      if (isNew || target.sessionId !== null) void chats.refreshSessions().catch(() => undefined)
    }
  }

  /** Asks in a session (or a new one when sessionId is null). */
  async function send(question: string, model: string, sessionId: string | null, options: SendOptions = {}) {
    const sessionKey = sessionId ?? chats.newDraftKey()
    const messageKey = chats.addTurn(sessionKey, question, model)
    const controller = new AbortController()
    chats.setRunning({ sessionKey, messageKey, controller, lastEventId: 0, stopRequested: false })
    if (sessionId !== null) chats.touchSession(sessionId)
    options.onStart?.(sessionKey)
    const documents = options.documents ?? false
    await drive({ sessionKey, messageKey, sessionId }, controller, (signal) =>
      streamQuestion(question, model, sessionId, signal, documents),
    { question, onSession: options.onSession, documents })
  }

  /** Asks the last question again in the same session (the old answer stays as a version). */
  async function regenerate(sessionKey: string, model: string, options: SendOptions = {}): Promise<void> {
    const question = lastOf(chats.messagesOf(sessionKey), (m) => m.role === 'user')
    if (!question || chats.runningOf(sessionKey)) return
    if (sessionKey.startsWith('draft-')) {
      // The server never named this chat (it refused before): ask again as a new chat.
      chats.forgetSession(sessionKey)
      await send(question.content, model, null, options)
      return
    }
    await send(question.content, model, sessionKey, options)
  }

  /** After a reload: follows the session's answer that is still being written, from its start. */
  async function resume(sessionId: string): Promise<void> {
    if (chats.runningOf(sessionId)) return
    const messages = chats.messagesOf(sessionId)
    const last = messages[messages.length - 1]
    if (!last || last.role !== 'assistant' || last.status !== 'streaming') return
    const controller = new AbortController()
    chats.setRunning({ sessionKey: sessionId, messageKey: last.key, controller, lastEventId: 0, stopRequested: false })
    // Replayed from frame 0: the saved text is a checkpoint, the frames are exact. The first
    // delta replaces the text, so the answer never shows twice nor flickers empty.
    await drive({ sessionKey: sessionId, messageKey: last.key, sessionId }, controller, (signal) =>
      followAnswer(sessionId, 0, signal),
    { replace: true })
  }

  /** Stops the session's answer; the server keeps what was written, marked stopped. */
  async function stop(sessionKey: string): Promise<void> {
    const run = chats.runningOf(sessionKey)
    if (!run) return
    if (sessionKey.startsWith('draft-')) {
      run.stopRequested = true // stopped as soon as the server names the session
      return
    }
    try {
      await chats.stop(sessionKey)
    } catch {
      run.controller.abort() // at least stop reading
    }
  }

  return { send, regenerate, resume, stop }
}
