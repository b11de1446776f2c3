// A tiny OpenAI-compatible model for the screenshots: answers a scripted reply to known
// questions (and echoes others), streamed word by word like a real model.

import { createServer, type IncomingMessage, type Server } from 'node:http'

export interface ScriptedModel {
  /** Base URL to give chatstream, ending in /v1. */
  url: string
  stop: () => Promise<void>
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((done, fail) => {
    let body = ''
    req.on('data', (chunk: Buffer) => (body += chunk.toString()))
    req.on('end', () => done(body))
    req.on('error', fail)
  })
}

function lastUserText(body: unknown): string {
  if (typeof body !== 'object' || body === null || !('messages' in body) || !Array.isArray(body.messages)) return ''
  for (let i = body.messages.length - 1; i >= 0; i--) {
    const m: unknown = body.messages[i]
    if (typeof m === 'object' && m !== null && 'role' in m && m.role === 'user' && 'content' in m) {
      return typeof m.content === 'string' ? m.content : ''
    }
  }
  return ''
}

export function startScriptedModel(replies: Record<string, string>, delayMs = 4): Promise<ScriptedModel> {
  const server: Server = createServer((req, res) => {
    void (async () => {
      if (req.method === 'GET' && req.url?.endsWith('/models')) {
        res.writeHead(200, { 'Content-Type': 'application/json' })
        res.end(JSON.stringify({ object: 'list', data: [{ id: 'scripted', object: 'model', owned_by: 'e2e' }] }))
        return
      }
      const body: unknown = JSON.parse(await readBody(req))
      const question = lastUserText(body)
      const reply = replies[question] ?? question
      res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' })
      const chunk = (delta: Record<string, string>, finish: string | null = null): string =>
        `data: ${JSON.stringify({
          id: 'chatcmpl-e2e',
          object: 'chat.completion.chunk',
          created: 0,
          model: 'scripted',
          choices: [{ index: 0, delta, finish_reason: finish }],
        })}\n\n`
      res.write(chunk({ role: 'assistant', content: '' }))
      for (const piece of reply.match(/\S+\s*|\s+/g) ?? []) {
        res.write(chunk({ content: piece }))
        await new Promise((r) => setTimeout(r, delayMs))
      }
      res.write(chunk({}, 'stop'))
      res.end('data: [DONE]\n\n')
    })().catch(() => res.destroy())
  })
  return new Promise((done) => {
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address ? address.port : 0
      done({
        url: `http://127.0.0.1:${port}/v1`,
        stop: () =>
          new Promise((closed) => {
            server.closeAllConnections()
            server.close(() => closed())
          }),
      })
    })
  })
}
