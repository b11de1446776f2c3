import { describe, expect, it } from 'vitest'

import { SseDecoder, readSse, type SseEvent } from '../sse'
import { toChatFrame, type ChatFrame } from '../chatFrames'

const enc = new TextEncoder()

// What `chatstream serve` sends for a new session (ids, a ping, usage, [DONE]), with text that
// tries to break the framing: newlines, "data:", "[DONE]", quotes, CJK and an emoji.
const ANSWER =
  'id: 1\ndata: {"sessionId":"6f0c-1"}\n\n' +
  'id: 2\ndata: {"type":"delta","content":"Hello "}\n\n' +
  ': ping\n\n' +
  'id: 3\ndata: {"type":"delta","content":"line\\ndata: [DONE] \\"q\\" 你好🙂"}\n\n' +
  'id: 4\ndata: {"type":"usage","promptTokens":9,"completionTokens":2,"ms":412}\n\n' +
  'id: 5\ndata: [DONE]\n\n'

const EXPECTED: ChatFrame[] = [
  { type: 'session', sessionId: '6f0c-1' },
  { type: 'delta', content: 'Hello ' },
  { type: 'delta', content: 'line\ndata: [DONE] "q" 你好🙂' },
  { type: 'usage', promptTokens: 9, completionTokens: 2, ms: 412 },
  { type: 'done' },
]

function decodeAll(chunks: Uint8Array[]): { events: SseEvent[]; decoder: SseDecoder } {
  const decoder = new SseDecoder()
  const events: SseEvent[] = []
  for (const chunk of chunks) events.push(...decoder.feed(chunk))
  events.push(...decoder.end())
  return { events, decoder }
}

function frames(events: SseEvent[]): (ChatFrame | null)[] {
  return events.map(toChatFrame)
}

function splitAt(bytes: Uint8Array, ...points: number[]): Uint8Array[] {
  const chunks: Uint8Array[] = []
  let last = 0
  for (const p of points) {
    chunks.push(bytes.slice(last, p))
    last = p
  }
  chunks.push(bytes.slice(last))
  return chunks
}

describe('SseDecoder', () => {
  it('decodes the server stream in one chunk, with ids', () => {
    const { events, decoder } = decodeAll([enc.encode(ANSWER)])
    expect(frames(events)).toEqual(EXPECTED)
    expect(events.map((e) => e.id)).toEqual(['1', '2', '3', '4', '5'])
    expect(events.every((e) => e.event === 'message')).toBe(true)
    expect(decoder.lastEventId).toBe('5')
    expect(decoder.comments).toBe(1)
  })

  it('gives the same events for a split at every byte', () => {
    const bytes = enc.encode(ANSWER)
    for (let i = 0; i <= bytes.length; i++) {
      const { events } = decodeAll(splitAt(bytes, i))
      expect(frames(events), `split at byte ${i}`).toEqual(EXPECTED)
      expect(events.map((e) => e.id)).toEqual(['1', '2', '3', '4', '5'])
    }
  })

  it('gives the same events when every byte is its own chunk', () => {
    const bytes = enc.encode(ANSWER)
    const chunks = Array.from(bytes, (b) => Uint8Array.of(b))
    const { events } = decodeAll(chunks)
    expect(frames(events)).toEqual(EXPECTED)
    expect(events.map((e) => e.id)).toEqual(['1', '2', '3', '4', '5'])
  })

  it('gives the same events for splits into three chunks', () => {
    const bytes = enc.encode(ANSWER.slice(0, 160))
    const want = frames(decodeAll([bytes]).events)
    expect(want.length).toBeGreaterThan(1)
    for (let i = 0; i <= bytes.length; i += 3) {
      for (let j = i; j <= bytes.length; j += 5) {
        expect(frames(decodeAll(splitAt(bytes, i, j)).events)).toEqual(want)
      }
    }
  })

  it('joins a multibyte character split across chunks', () => {
    const text = 'data: {"type":"delta","content":"你好🙂é"}\n\n'
    const bytes = enc.encode(text)
    const byteStart = enc.encode(text.slice(0, text.indexOf('你'))).length
    // every cut inside 你 (3 bytes), 好 (3), 🙂 (4) and é (2)
    for (let cut = byteStart + 1; cut < byteStart + 12; cut++) {
      const { events } = decodeAll(splitAt(bytes, cut))
      expect(frames(events)).toEqual([{ type: 'delta', content: '你好🙂é' }])
    }
    const { events } = decodeAll(Array.from(bytes, (b) => Uint8Array.of(b)))
    expect(frames(events)).toEqual([{ type: 'delta', content: '你好🙂é' }])
  })

  it('accepts CRLF, CR and LF line endings, also a CRLF split across chunks', () => {
    for (const eol of ['\r\n', '\r', '\n']) {
      const bytes = enc.encode(ANSWER.replaceAll('\n', eol))
      expect(frames(decodeAll([bytes]).events), JSON.stringify(eol)).toEqual(EXPECTED)
      for (let i = 0; i <= bytes.length; i++) {
        expect(frames(decodeAll(splitAt(bytes, i)).events)).toEqual(EXPECTED)
      }
    }
    const crlf = enc.encode('data: a\r\n\r\ndata: b\r\n\r\n')
    const cut = 'data: a\r'.length // between CR and LF
    const { events } = decodeAll(splitAt(crlf, cut, cut + 2))
    expect(events.map((e) => e.data)).toEqual(['a', 'b'])
  })

  it('skips pings and other comments without dispatching anything', () => {
    const { events, decoder } = decodeAll([enc.encode(': ping\n\n: ping\n\n:\n\n')])
    expect(events).toEqual([])
    expect(decoder.comments).toBe(3)
    const mixed = decodeAll([enc.encode('data: {"type":"delta",\n: ping\ndata: "content":"x"}\n\n')])
    expect(mixed.events.map((e) => e.data)).toEqual(['{"type":"delta",\n"content":"x"}'])
  })

  it('joins data lines, keeps ids across events, ignores retry, unknown fields and a BOM', () => {
    const text =
      '\uFEFFretry: 1000\nfoo: bar\nid: 7\ndata: one\ndata:two\ndata\n\nevent: x\ndata: three\n\n'
    const { events } = decodeAll([enc.encode(text)])
    expect(events).toEqual([
      { event: 'message', data: 'one\ntwo\n', id: '7' },
      { event: 'x', data: 'three', id: '7' },
    ])
  })

  it('drops an event cut off before its blank line', () => {
    const { events } = decodeAll([enc.encode('data: {"type":"delta","content":"a"}\n\ndata: [DONE]\n')])
    expect(frames(events)).toEqual([{ type: 'delta', content: 'a' }])
  })

  it('reads a fetch body through readSse', async () => {
    const bytes = enc.encode(ANSWER)
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < bytes.length; i += 7) controller.enqueue(bytes.slice(i, i + 7))
        controller.close()
      },
    })
    const got: (ChatFrame | null)[] = []
    for await (const event of readSse(body)) got.push(toChatFrame(event))
    expect(got).toEqual(EXPECTED)
  })

  it('cancels the body when the reader leaves early', async () => {
    let cancelled = false
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(enc.encode('data: [DONE]\n\n'))
      },
      cancel() {
        cancelled = true
      },
    })
    for await (const event of readSse(body)) {
      expect(toChatFrame(event)).toEqual({ type: 'done' })
      break
    }
    expect(cancelled).toBe(true)
  })
})

describe('toChatFrame', () => {
  const ev = (data: string, event = 'message'): SseEvent => ({ data, event, id: null })

  it('reads error frames', () => {
    expect(toChatFrame(ev('{"type":"error","code":5003,"message":"model failed"}', 'error'))).toEqual({
      type: 'error',
      code: 5003,
      message: 'model failed',
    })
    expect(toChatFrame(ev('{"type":"error","message":"x"}'))).toEqual({
      type: 'error',
      code: 5003,
      message: 'x',
    })
    expect(toChatFrame(ev('not json', 'error'))).toEqual({ type: 'error', code: 5003, message: 'not json' })
  })

  it('reads [DONE], stopped and the session frame', () => {
    expect(toChatFrame(ev('[DONE]'))).toEqual({ type: 'done' })
    expect(toChatFrame(ev('{"type":"stopped"}'))).toEqual({ type: 'stopped' })
    expect(toChatFrame(ev('{"sessionId":"s1"}'))).toEqual({ type: 'session', sessionId: 's1' })
  })

  it('ignores unknown event types, unknown event names and malformed frames', () => {
    expect(toChatFrame(ev('{"type":"tool_call","id":"t"}'))).toBeNull()
    expect(toChatFrame(ev('{"type":"tool","name":"x"}'))).toBeNull()
    expect(toChatFrame(ev('{"type":"delta"}'))).toBeNull()
    expect(toChatFrame(ev('{"type":"delta","content":5}'))).toBeNull()
    expect(toChatFrame(ev('{"hello":1}'))).toBeNull()
    expect(toChatFrame(ev('[1,2]'))).toBeNull()
    expect(toChatFrame(ev('plain text'))).toBeNull()
    expect(toChatFrame(ev('{"type":"delta","content":"x"}', 'custom'))).toBeNull()
    expect(toChatFrame(ev('[DONE]', 'custom'))).toBeNull()
  })
})
