// Server-Sent Events, decoded incrementally from the bytes of a fetch() body.
// Follows the WHATWG event-stream rules: lines end with CR, LF or CRLF (also when a CRLF is
// split across two chunks), `:` starts a comment (the server's `: ping`), `data` lines join
// with "\n", an empty line dispatches, `id` sets the last event id. One streaming TextDecoder
// per stream, so a multibyte character split across chunks arrives whole. Work per chunk is
// proportional to the chunk, never to what came before. No app imports here.

export interface SseEvent {
  /** The `event:` field, "message" when absent. */
  event: string
  data: string
  /** The last `id:` seen on this stream so far (ids persist across events), or null. */
  id: string | null
}

export class SseDecoder {
  private readonly decoder = new TextDecoder('utf-8')
  private line = '' // the incomplete last line
  private skipLf = false // the previous text ended with CR: a leading LF belongs to it
  private started = false
  private data: string[] = []
  private hasData = false
  private eventType = ''
  private lastId: string | null = null
  /** Comments seen (pings), for callers that watch liveness. */
  comments = 0

  /** Feeds bytes; returns the events they complete (maybe none). */
  feed(chunk: Uint8Array): SseEvent[] {
    return this.push(this.decoder.decode(chunk, { stream: true }))
  }

  /** The stream ended: flushes the decoder. An event without its blank line is dropped. */
  end(): SseEvent[] {
    const events = this.push(this.decoder.decode())
    this.line = ''
    this.data = []
    this.hasData = false
    this.eventType = ''
    return events
  }

  get lastEventId(): string | null {
    return this.lastId
  }

  private push(text: string): SseEvent[] {
    const events: SseEvent[] = []
    if (!text) return events
    let start = 0
    if (!this.started) {
      this.started = true
      if (text.charCodeAt(0) === 0xfeff) start = 1
    }
    if (this.skipLf) {
      this.skipLf = false
      if (text.charCodeAt(start) === 10) start += 1
    }
    for (let i = start; i < text.length; i++) {
      const c = text.charCodeAt(i)
      if (c !== 10 && c !== 13) continue
      const piece = text.slice(start, i)
      const line = this.line ? this.line + piece : piece
      this.line = ''
      this.handleLine(line, events)
      if (c === 13) {
        if (i + 1 < text.length) {
          if (text.charCodeAt(i + 1) === 10) i += 1
        } else {
          this.skipLf = true
        }
      }
      start = i + 1
    }
    if (start < text.length) this.line += text.slice(start)
    return events
  }

  private handleLine(line: string, events: SseEvent[]): void {
    if (line === '') {
      if (this.hasData) {
        events.push({ event: this.eventType || 'message', data: this.data.join('\n'), id: this.lastId })
      }
      this.data = []
      this.hasData = false
      this.eventType = ''
      return
    }
    if (line.charCodeAt(0) === 58) {
      this.comments += 1 // ":" comment, e.g. ": ping"
      return
    }
    const colon = line.indexOf(':')
    const field = colon < 0 ? line : line.slice(0, colon)
    let value = colon < 0 ? '' : line.slice(colon + 1)
    if (value.charCodeAt(0) === 32) value = value.slice(1)
    switch (field) {
      case 'data':
        this.data.push(value)
        this.hasData = true
        break
      case 'event':
        this.eventType = value
        break
      case 'id':
        if (!value.includes('\0')) this.lastId = value
        break
      default:
        break // `retry` and unknown fields are ignored
    }
  }
}

/**
 * Reads a fetch() body as events. Leaving the loop early cancels the body (closes the
 * connection); an aborted fetch rejects here with the AbortError.
 */
export async function* readSse(
  body: ReadableStream<Uint8Array>,
  decoder: SseDecoder = new SseDecoder(),
): AsyncGenerator<SseEvent, void, undefined> {
  const reader = body.getReader()
  let finished = false
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      yield* decoder.feed(value)
    }
    finished = true
    yield* decoder.end()
  } finally {
    if (!finished) await reader.cancel().catch(() => undefined)
    reader.releaseLock()
  }
}
