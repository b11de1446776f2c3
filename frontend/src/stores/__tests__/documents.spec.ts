import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createPinia, setActivePinia } from 'pinia'

import type { DocumentInfo } from '@/api/types'
import { DocumentCheckError, POLL_MS, checkFile, useDocumentsStore } from '../documents'

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } })
}

function ok(fields: Record<string, unknown>): Response {
  return json(200, { status_code: 1000, status_msg: 'success', ...fields })
}

function doc(id: string, status: DocumentInfo['status'], extra: Partial<DocumentInfo> = {}): DocumentInfo {
  return {
    id,
    name: `${id}.md`,
    kind: 'md',
    size: 10,
    status,
    progress: status === 'ready' ? 1 : 0,
    chunks: status === 'ready' ? 3 : 0,
    error: null,
    sessionId: null,
    createdAt: '',
    updatedAt: '',
    ...extra,
  }
}

type Handler = (url: string, init: RequestInit) => Response | Promise<Response>
let routes: { method: string; match: RegExp; handle: Handler }[] = []
const calls: { method: string; url: string; init: RequestInit }[] = []

function route(method: string, match: RegExp, handle: Handler): void {
  routes.push({ method, match, handle })
}

/** The list answers these, one per call (the last one again when they run out). */
function listAnswers(...lists: DocumentInfo[][]): void {
  let i = 0
  route('GET', /\/AI\/documents$/, () => ok({ documents: lists[Math.min(i++, lists.length - 1)] }))
}

function listCalls(): number {
  return calls.filter((c) => c.method === 'GET' && c.url.endsWith('/AI/documents')).length
}

beforeEach(() => {
  setActivePinia(createPinia())
  routes = []
  calls.length = 0
  route('GET', /\/config$/, () => ok({ emailVerification: 'off' }))
  vi.stubGlobal(
    'fetch',
    vi.fn(async (url: string, init: RequestInit) => {
      const method = init.method ?? 'GET'
      calls.push({ method, url, init })
      for (let i = routes.length - 1; i >= 0; i--) {
        const r = routes[i]
        if (r && r.method === method && r.match.test(url)) return r.handle(url, init)
      }
      throw new Error(`unexpected fetch ${method} ${url}`)
    }),
  )
})

afterEach(() => {
  vi.useRealTimers()
  vi.unstubAllGlobals()
})

describe('checkFile', () => {
  it('takes the extensions the server reads, whatever their case', () => {
    for (const name of ['a.md', 'b.TXT', 'c.pdf', 'd.docx', 'e.html', 'f.HTM', 'g.markdown']) {
      expect(checkFile({ name, size: 5 }, null)).toBeNull()
    }
  })

  it('refuses other kinds, empty files and files over the limit', () => {
    expect(checkFile({ name: 'x.exe', size: 5 }, null)).toMatchObject({ reason: 'type', fileName: 'x.exe' })
    expect(checkFile({ name: 'README', size: 5 }, null)).toMatchObject({ reason: 'type' })
    expect(checkFile({ name: 'x.doc', size: 5 }, null)).toMatchObject({ reason: 'type' })
    expect(checkFile({ name: 'x.md', size: 0 }, null)).toMatchObject({ reason: 'empty' })
    expect(checkFile({ name: 'x.md', size: 101 }, 100)).toMatchObject({ reason: 'size', limit: 100 })
    expect(checkFile({ name: 'x.md', size: 100 }, 100)).toBeNull()
  })
})

describe('documents store', () => {
  it('polls while a document is queued or indexing, and stops when none is', async () => {
    vi.useFakeTimers()
    listAnswers(
      [doc('a', 'queued'), doc('b', 'ready')],
      [doc('a', 'indexing', { progress: 0.4 }), doc('b', 'ready')],
      [doc('a', 'ready'), doc('b', 'ready')],
    )
    const docs = useDocumentsStore()
    docs.startPolling()
    await docs.load()
    expect(listCalls()).toBe(1)
    expect(docs.pending.map((d) => d.id)).toEqual(['a'])

    await vi.advanceTimersByTimeAsync(POLL_MS)
    expect(listCalls()).toBe(2)
    expect(docs.documents[0]).toMatchObject({ status: 'indexing', progress: 0.4 })

    await vi.advanceTimersByTimeAsync(POLL_MS)
    expect(listCalls()).toBe(3)
    expect(docs.documents[0]?.status).toBe('ready')
    expect(docs.pending).toEqual([])

    await vi.advanceTimersByTimeAsync(POLL_MS * 10)
    expect(listCalls()).toBe(3) // nothing pending: no more requests
  })

  it('does not poll before startPolling, nor after stopPolling or reset', async () => {
    vi.useFakeTimers()
    listAnswers([doc('a', 'indexing')])
    const docs = useDocumentsStore()
    await docs.load()
    await vi.advanceTimersByTimeAsync(POLL_MS * 3)
    expect(listCalls()).toBe(1)

    docs.startPolling()
    await vi.advanceTimersByTimeAsync(POLL_MS)
    expect(listCalls()).toBe(2)
    docs.stopPolling() // the view is gone
    await vi.advanceTimersByTimeAsync(POLL_MS * 3)
    expect(listCalls()).toBe(2)

    docs.startPolling()
    await vi.advanceTimersByTimeAsync(POLL_MS)
    expect(listCalls()).toBe(3)
    docs.reset() // logout
    expect(docs.documents).toEqual([])
    await vi.advanceTimersByTimeAsync(POLL_MS * 3)
    expect(listCalls()).toBe(3)
  })

  it('starts polling when an upload is queued, and asks less often while the server is away', async () => {
    vi.useFakeTimers()
    listAnswers([])
    const docs = useDocumentsStore()
    docs.startPolling()
    await docs.load()
    route('POST', /\/AI\/documents$/, () => json(202, { status_code: 1000, status_msg: 'success', document: doc('n', 'queued') }))
    await docs.upload(new File(['# hi'], 'n.md'))
    expect(docs.documents.map((d) => d.id)).toEqual(['n'])
    let down = true
    route('GET', /\/AI\/documents$/, () => {
      if (down) return Promise.reject(new TypeError('Failed to fetch'))
      return ok({ documents: [doc('n', 'ready')] })
    })
    await vi.advanceTimersByTimeAsync(POLL_MS)
    expect(listCalls()).toBe(2) // failed
    await vi.advanceTimersByTimeAsync(POLL_MS)
    expect(listCalls()).toBe(2) // backing off: twice the interval
    down = false
    await vi.advanceTimersByTimeAsync(POLL_MS)
    expect(listCalls()).toBe(3)
    expect(docs.documents[0]?.status).toBe('ready')
  })

  it('keeps a document uploaded while a list request was on its way', async () => {
    let answerList: (r: Response) => void = () => undefined
    route('GET', /\/AI\/documents$/, () => new Promise<Response>((resolve) => (answerList = resolve)))
    route('POST', /\/AI\/documents$/, () => ok({ document: doc('new', 'queued') }))
    const docs = useDocumentsStore()
    const loading = docs.load()
    await vi.waitFor(() => expect(listCalls()).toBe(1))
    await docs.upload(new File(['x'], 'new.md'))
    answerList(ok({ documents: [doc('old', 'ready')] })) // asked before the upload: does not know it
    await loading
    expect(docs.documents.map((d) => d.id)).toEqual(['new', 'old'])
  })

  it('uploads multipart with the file and the session, after checking it against the server limit', async () => {
    route('GET', /\/config$/, () => ok({ emailVerification: 'off', documentMaxBytes: 8 }))
    route('POST', /\/AI\/documents$/, () => json(202, { status_code: 1000, status_msg: 'success', document: doc('d', 'queued') }))
    const docs = useDocumentsStore()

    const tooBig = await docs.upload(new File(['123456789'], 'big.md')).catch((e: unknown) => e)
    expect(tooBig).toBeInstanceOf(DocumentCheckError)
    expect(tooBig).toMatchObject({ reason: 'size', limit: 8 })
    const wrongKind = await docs.upload(new File(['x'], 'x.exe')).catch((e: unknown) => e)
    expect(wrongKind).toMatchObject({ reason: 'type' })
    expect(calls.filter((c) => c.method === 'POST')).toHaveLength(0)

    const { document, existed } = await docs.upload(new File(['# ok'], 'ok.md'), 's1')
    expect(document.id).toBe('d')
    expect(existed).toBe(false)
    const post = calls.find((c) => c.method === 'POST')
    expect(post?.init.body).toBeInstanceOf(FormData)
    const form = post?.init.body as FormData
    expect((form.get('file') as File).name).toBe('ok.md')
    expect(form.get('sessionId')).toBe('s1')
    expect(post?.init.headers).not.toHaveProperty('Content-Type') // the browser sets the boundary
    expect(docs.uploads).toEqual([])

    // the same bytes again: the server answers the same document
    route('POST', /\/AI\/documents$/, () => ok({ document: doc('d', 'ready') }))
    const again = await docs.upload(new File(['# ok'], 'ok.md'))
    expect(again.existed).toBe(true)
    expect(docs.documents).toHaveLength(1)
    expect(docs.documents[0]?.status).toBe('ready')
  })

  it('passes the server\'s refusal on with its message', async () => {
    route('POST', /\/AI\/documents$/, () =>
      json(415, { status_code: 2001, status_msg: 'x.pdf is not a PDF: its content looks like plain text' }),
    )
    const docs = useDocumentsStore()
    await expect(docs.upload(new File(['hello'], 'x.pdf'))).rejects.toMatchObject({
      code: 2001,
      httpStatus: 415,
      message: 'x.pdf is not a PDF: its content looks like plain text',
    })
    expect(docs.documents).toEqual([])
    expect(docs.uploads).toEqual([])
  })

  it('deletes, also a document that is gone already, and a poll does not bring it back', async () => {
    listAnswers([doc('a', 'ready'), doc('b', 'indexing')])
    const docs = useDocumentsStore()
    await docs.load()
    let release: () => void = () => undefined
    route('DELETE', /\/AI\/documents\/a$/, () => new Promise<Response>((r) => (release = () => r(ok({})))))
    const removing = docs.remove('a')
    await docs.load() // a poll while the delete is on its way
    expect(docs.documents.map((d) => d.id)).toEqual(['b'])
    release()
    await removing
    expect(docs.documents.map((d) => d.id)).toEqual(['b'])
    expect(calls.some((c) => c.method === 'DELETE' && c.url.endsWith('/api/v1/AI/documents/a'))).toBe(true)

    route('DELETE', /\/AI\/documents\/b$/, () => json(404, { status_code: 2012, status_msg: 'document does not exist' }))
    await docs.remove('b')
    expect(docs.documents).toEqual([])
  })
})
