import { afterEach, describe, expect, it, vi } from 'vitest'

import { ApiError, configureHttp, openStream, request } from '../http'

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } })
}

afterEach(() => {
  configureHttp({ getToken: () => null, onBadToken: () => undefined })
  vi.unstubAllGlobals()
})

describe('http', () => {
  it('sends the token and unwraps the envelope', async () => {
    const fetch = vi.fn<typeof globalThis.fetch>(async () => json(200, { status_code: 1000, status_msg: 'success', name: 'x' }))
    vi.stubGlobal('fetch', fetch)
    configureHttp({ getToken: () => 'tok' })
    await expect(request<{ name: string }>('PATCH', '/a', { name: 'x' })).resolves.toMatchObject({ name: 'x' })
    const [url, init] = fetch.mock.calls[0] as unknown as [string, RequestInit]
    expect(url).toBe('/api/v1/a')
    expect(init.headers).toMatchObject({ Authorization: 'Bearer tok', 'Content-Type': 'application/json' })
  })

  it('turns an error answer into an ApiError with code, message, status and extra fields', async () => {
    vi.stubGlobal('fetch', vi.fn(async () => json(502, { status_code: 5003, status_msg: 'model failed', sessionId: 's' })))
    const err = await request('POST', '/x').catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ApiError)
    expect(err).toMatchObject({ code: 5003, message: 'model failed', httpStatus: 502, extra: { sessionId: 's' } })
  })

  it('calls onBadToken on 401 code 2006, but not for anonymous calls', async () => {
    const onBadToken = vi.fn<() => void>()
    configureHttp({ getToken: () => 'old', onBadToken })
    vi.stubGlobal('fetch', vi.fn(async () => json(401, { status_code: 2006, status_msg: 'invalid or expired token' })))
    await expect(request('GET', '/x')).rejects.toMatchObject({ badToken: true })
    expect(onBadToken).toHaveBeenCalledTimes(1)
    await expect(request('POST', '/user/login', {}, { anonymous: true })).rejects.toBeInstanceOf(ApiError)
    expect(onBadToken).toHaveBeenCalledTimes(1)
  })

  it('reports a network failure or a non-JSON answer as an ApiError', async () => {
    vi.stubGlobal('fetch', vi.fn(async () => Promise.reject(new TypeError('Failed to fetch'))))
    await expect(request('GET', '/x')).rejects.toMatchObject({ code: 0, httpStatus: 0 })
    vi.stubGlobal('fetch', vi.fn(async () => new Response('<html>proxy error</html>', { status: 502 })))
    await expect(request('GET', '/x')).rejects.toMatchObject({ code: 0, httpStatus: 502 })
  })

  it('opens a stream only when the server answers an event stream', async () => {
    vi.stubGlobal('fetch', vi.fn(async () => new Response('data: [DONE]\n\n', { headers: { 'Content-Type': 'text/event-stream' } })))
    const response = await openStream('POST', '/s', {})
    expect(await response.text()).toBe('data: [DONE]\n\n')
    vi.stubGlobal('fetch', vi.fn(async () => json(200, { status_code: 1000, status_msg: 'success' })))
    await expect(openStream('POST', '/s', {})).rejects.toBeInstanceOf(ApiError)
  })
})
