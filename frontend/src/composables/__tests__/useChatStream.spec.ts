import { beforeEach, describe, expect, it, vi } from 'vitest'
import { createPinia, setActivePinia } from 'pinia'
import { watch } from 'vue'

import { useChatStream } from '../useChatStream'
import { useChatsStore } from '@/stores/chats'

const enc = new TextEncoder()

type Handler = (url: string, init: RequestInit) => Response | Promise<Response>

/** An SSE body sending `frames`; `drop` ends it with a network error instead of a clean end. */
function sse(frames: string[], drop = false): Response {
  const body = new ReadableStream<Uint8Array>({
    async start(controller) {
      for (const frame of frames) {
        controller.enqueue(enc.encode(frame))
        await new Promise((r) => setTimeout(r, 1))
      }
      if (drop) controller.error(new TypeError('network error'))
      else controller.close()
    },
  })
  return new Response(body, { status: 200, headers: { 'Content-Type': 'text/event-stream' } })
}

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } })
}

const delta = (id: number, content: string): string => `id: ${id}\ndata: ${JSON.stringify({ type: 'delta', content })}\n\n`
const done = (id: number): string => `id: ${id}\ndata: [DONE]\n\n`

let routes: { match: RegExp; handle: Handler }[] = []
const calls: { url: string; init: RequestInit }[] = []

function route(match: RegExp, handle: Handler): void {
  routes.push({ match, handle })
}

beforeEach(() => {
  setActivePinia(createPinia())
  routes = []
  calls.length = 0
  route(/\/AI\/chat\/sessions\?/, () => json(200, { status_code: 1000, status_msg: 'success', sessions: [], nextCursor: null }))
  vi.stubGlobal(
    'fetch',
    vi.fn(async (url: string, init: RequestInit) => {
      calls.push({ url, init })
      // newest route first, so a test can override the defaults
      for (let i = routes.length - 1; i >= 0; i--) {
        const r = routes[i]
        if (r && r.match.test(url)) return r.handle(url, init)
      }
      throw new Error(`unexpected fetch ${url}`)
    }),
  )
})

describe('useChatStream', () => {
  it('asks in a new session: binds it, appends deltas, completes', async () => {
    route(/send-stream-new-session/, () =>
      sse([
        'id: 1\ndata: {"sessionId":"s1"}\n\n',
        delta(2, 'Hel'),
        ': ping\n\n',
        delta(3, 'lo'),
        'id: 4\ndata: {"type":"usage","promptTokens":3,"completionTokens":2,"ms":5}\n\n',
        done(5),
      ]),
    )
    const chats = useChatsStore()
    const onSession = vi.fn<(sessionId: string, draftKey: string) => void>()
    const onStart = vi.fn<(sessionKey: string) => void>()
    await useChatStream().send('Hi there', '1', null, { onSession, onStart })
    expect(onStart).toHaveBeenCalledWith(expect.stringMatching(/^draft-/))
    expect(onSession).toHaveBeenCalledWith('s1', onStart.mock.calls[0]?.[0])
    const messages = chats.messagesOf('s1')
    expect(messages.map((m) => [m.role, m.content, m.status])).toEqual([
      ['user', 'Hi there', 'complete'],
      ['assistant', 'Hello', 'complete'],
    ])
    expect(messages[1]?.completionTokens).toBe(2)
    expect(chats.runningOf('s1')).toBeUndefined()
    expect(JSON.parse(String(calls[0]?.init.body))).toEqual({ question: 'Hi there', modelType: '1' })
  })

  it('shows an error the server answered before the stream (busy session)', async () => {
    route(/send-stream$/, () => json(429, { status_code: 4029, status_msg: 'this session is still answering' }))
    const chats = useChatsStore()
    await useChatStream().send('again', '1', 's9')
    const answer = chats.messagesOf('s9')[1]
    expect(answer?.status).toBe('error')
    expect(answer?.errorCode).toBe(4029)
    expect(answer?.error).toBe('this session is still answering')
  })

  it('binds the new session of a refused question, and shows the error', async () => {
    route(/send-stream-new-session/, () =>
      json(502, { status_code: 5003, status_msg: 'model failed: upstream answered 500', sessionId: 's2' }),
    )
    const chats = useChatsStore()
    await useChatStream().send('q', '1', null)
    expect(chats.messagesOf('s2')[1]?.status).toBe('error')
    expect(chats.sessions.map((s) => s.sessionId)).toContain('s2')
  })

  it('keeps the text and marks the error of an answer that fails mid-way', async () => {
    route(/send-stream$/, () =>
      sse([delta(1, 'partial '), 'id: 2\nevent: error\ndata: {"type":"error","code":5003,"message":"model failed"}\n\n']),
    )
    const chats = useChatsStore()
    await useChatStream().send('q', '1', 's3')
    const answer = chats.messagesOf('s3')[1]
    expect([answer?.content, answer?.status, answer?.error]).toEqual(['partial ', 'error', 'model failed'])
  })

  it('re-attaches after a dropped connection from the last event id: nothing lost or repeated', async () => {
    route(/send-stream$/, () => sse([delta(1, 'a '), delta(2, 'b '), delta(3, 'c ')], true))
    route(/\/AI\/chat\/stream\?/, () => sse([delta(4, 'd'), done(5)]))
    const chats = useChatsStore()
    await useChatStream().send('q', '1', 's4')
    const answer = chats.messagesOf('s4')[1]
    expect([answer?.content, answer?.status]).toEqual(['a b c d', 'complete'])
    const follow = calls.find((c) => c.url.includes('/AI/chat/stream?'))
    expect(follow?.url).toContain('sessionId=s4')
    expect(follow?.url).toContain('after=3')
    expect(new Headers(follow?.init.headers).get('Last-Event-ID')).toBe('3')
  })

  it('resumes an answer after a reload: replays it from the start, replacing the saved checkpoint', async () => {
    route(/\/AI\/chat\/history/, () =>
      json(200, {
        status_code: 1000,
        status_msg: 'success',
        history: [
          { id: 1, is_user: true, role: 'user', content: 'q', status: 'complete', model: '1', error: null, createdAt: '' },
          { id: 2, is_user: false, role: 'assistant', content: 'one tw', status: 'streaming', model: '1', error: null, createdAt: '' },
        ],
      }),
    )
    route(/\/AI\/chat\/stream\?/, () => sse([delta(1, 'one '), delta(2, 'two '), delta(3, 'three'), done(4)]))
    const chats = useChatsStore()
    await chats.loadHistory('s5')
    await useChatStream().resume('s5')
    expect(calls.find((c) => c.url.includes('/stream?'))?.url).toContain('after=0')
    const answer = chats.messagesOf('s5')[1]
    expect([answer?.content, answer?.status]).toEqual(['one two three', 'complete'])
  })

  it('treats a resume with nothing left to follow as finished and reloads the history', async () => {
    let historyCalls = 0
    route(/\/AI\/chat\/history/, () => {
      historyCalls += 1
      const status = historyCalls === 1 ? 'streaming' : 'complete'
      return json(200, {
        status_code: 1000,
        status_msg: 'success',
        history: [{ id: 2, is_user: false, role: 'assistant', content: 'all', status, model: '1', error: null, createdAt: '' }],
      })
    })
    route(/\/AI\/chat\/stream\?/, () => json(404, { status_code: 2011, status_msg: 'no answer is being written' }))
    const chats = useChatsStore()
    await chats.loadHistory('s6')
    await useChatStream().resume('s6')
    expect(chats.messagesOf('s6')[0]?.status).toBe('complete')
  })

  it('stops: asks the server, and the stream ends marked stopped', async () => {
    let release: () => void = () => undefined
    const held = new Promise<void>((r) => (release = r))
    route(/send-stream$/, () => {
      const body = new ReadableStream<Uint8Array>({
        async start(controller) {
          controller.enqueue(enc.encode(delta(1, 'w0 ')))
          await held
          controller.enqueue(enc.encode('id: 2\ndata: {"type":"stopped"}\n\n' + done(3)))
          controller.close()
        },
      })
      return new Response(body, { headers: { 'Content-Type': 'text/event-stream' } })
    })
    route(/\/AI\/chat\/stop/, () => {
      release()
      return json(200, { status_code: 1000, status_msg: 'success', stopped: true })
    })
    const chats = useChatsStore()
    const stream = useChatStream()
    const sending = stream.send('q', '1', 's7')
    await vi.waitFor(() => expect(chats.messagesOf('s7')[1]?.content).toBe('w0 '))
    expect(chats.runningOf('s7')).toBeDefined()
    await stream.stop('s7')
    await sending
    expect(calls.some((c) => c.url.endsWith('/AI/chat/stop') && c.init.body === '{"sessionId":"s7"}')).toBe(true)
    expect(chats.messagesOf('s7')[1]?.status).toBe('stopped')
  })

  it('regenerates by asking the last question again in the same session', async () => {
    route(/send-stream$/, () => sse([delta(1, 'again'), done(2)]))
    const chats = useChatsStore()
    const stream = useChatStream()
    await stream.send('the question', '1', 's8')
    await stream.regenerate('s8', '1')
    const bodies = calls.filter((c) => c.url.endsWith('/send-stream')).map((c) => JSON.parse(String(c.init.body)))
    expect(bodies).toEqual([
      { question: 'the question', modelType: '1', sessionId: 's8' },
      { question: 'the question', modelType: '1', sessionId: 's8' },
    ])
    expect(chats.messagesOf('s8').filter((m) => m.role === 'assistant')).toHaveLength(2)
  })

  it('keeps a document answer\'s sources frame on the answer, before its text', async () => {
    const source = {
      n: 1,
      documentId: 'd1',
      title: 'guide.md',
      section: 'Setup > Install',
      chunk: 'c1',
      snippet: 'Run make setup.',
      text: 'Run make setup. Then make run.',
      score: 0.812,
    }
    let textWhenSources: string | undefined
    route(/send-stream-new-session/, () =>
      sse([
        'id: 1\ndata: {"sessionId":"s9"}\n\n',
        `id: 2\ndata: ${JSON.stringify({ type: 'sources', sources: [source, { title: 'no number' }] })}\n\n`,
        delta(3, 'Run make setup [1].'),
        done(4),
      ]),
    )
    const chats = useChatsStore()
    const stream = useChatStream()
    const stop = watch(
      () => chats.messagesOf('s9')[1]?.sources,
      (sources) => {
        if (sources) textWhenSources = chats.messagesOf('s9')[1]?.content
      },
      { flush: 'sync' },
    )
    await stream.send('how to install?', '1', null, { documents: true })
    stop()
    expect(textWhenSources).toBe('') // the passages are known before the first word
    const answer = chats.messagesOf('s9')[1]
    expect(answer?.sources).toEqual([source]) // the malformed one (no n) is dropped
    expect(answer?.sourcesNote).toBeNull()
    expect(answer?.content).toBe('Run make setup [1].')
    expect(answer?.status).toBe('complete')
    // asked with documents on: the body says so, and the new session is marked
    const body = JSON.parse(String(calls.find((c) => c.url.endsWith('/send-stream-new-session'))?.init.body))
    expect(body).toEqual({ question: 'how to install?', modelType: '1', documents: true })
    expect(chats.documentsOf('s9')).toBe(true)
  })

  it('keeps the note of a document answer that found no passage', async () => {
    const note = 'No passage in your documents matches this question.'
    route(/send-stream$/, () =>
      sse([`id: 1\ndata: ${JSON.stringify({ type: 'sources', sources: [], note })}\n\n`, delta(2, 'I do not know.'), done(3)]),
    )
    const chats = useChatsStore()
    await useChatStream().send('unrelated?', '1', 's10')
    const answer = chats.messagesOf('s10')[1]
    expect(answer?.sources).toEqual([])
    expect(answer?.sourcesNote).toBe(note)
    const body = JSON.parse(String(calls.find((c) => c.url.endsWith('/send-stream'))?.init.body))
    expect(body).not.toHaveProperty('documents') // off: not sent at all
  })

  it('restores sources and notes from the history', async () => {
    const source = { n: 2, documentId: 'd', title: 't', section: '', chunk: 'c', snippet: 's', text: 'x', score: 0.5 }
    route(/\/AI\/chat\/history/, () =>
      json(200, {
        status_code: 1000,
        status_msg: 'success',
        documents: true,
        history: [
          { id: 1, is_user: true, role: 'user', content: 'q', status: 'complete', model: null, error: null, createdAt: '' },
          { id: 2, is_user: false, role: 'assistant', content: 'a [2]', status: 'complete', model: '1', error: null, createdAt: '', sources: [source] },
          { id: 3, is_user: false, role: 'assistant', content: 'b', status: 'complete', model: '1', error: null, createdAt: '', sourcesNote: 'none matched' },
          { id: 4, is_user: false, role: 'assistant', content: 'c', status: 'complete', model: '1', error: null, createdAt: '' },
        ],
      }),
    )
    const chats = useChatsStore()
    await chats.loadHistory('s11')
    const [, withSources, withNote, plain] = chats.messagesOf('s11')
    expect(withSources?.sources).toEqual([source])
    expect(withNote?.sources).toEqual([])
    expect(withNote?.sourcesNote).toBe('none matched')
    expect(plain?.sources).toBeNull()
    expect(chats.documentsOf('s11')).toBe(true)
  })
})
