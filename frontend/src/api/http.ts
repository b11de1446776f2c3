// The one fetch wrapper: base URL, Bearer token, envelope unwrapped into an ApiError with the
// server's code, message and HTTP status. Knows nothing of stores: the auth store plugs in the
// token and what to do when the server says the token is bad (configureHttp).

import type { Envelope } from './types'

export const API_BASE = '/api/v1'

/** 401 with this code: the token is missing, invalid or expired. */
export const CODE_BAD_TOKEN = 2006
/** Network failure or an answer that is not the API's JSON. */
export const CODE_NETWORK = 0

export class ApiError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly httpStatus: number,
    readonly extra: Readonly<Record<string, unknown>> = {},
  ) {
    super(message)
    this.name = 'ApiError'
  }

  get badToken(): boolean {
    return this.httpStatus === 401 && this.code === CODE_BAD_TOKEN
  }
}

interface HttpHooks {
  getToken: () => string | null
  onBadToken: () => void
}

const hooks: HttpHooks = { getToken: () => null, onBadToken: () => undefined }

export function configureHttp(next: Partial<HttpHooks>): void {
  Object.assign(hooks, next)
}

export interface RequestOptions {
  signal?: AbortSignal
  headers?: Record<string, string>
  /** Do not call onBadToken on a 401 (login itself answers 401 for a wrong password). */
  anonymous?: boolean
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

async function send(method: string, path: string, body: unknown, options: RequestOptions): Promise<Response> {
  const headers: Record<string, string> = { ...options.headers }
  const token = options.anonymous ? null : hooks.getToken()
  if (token) headers.Authorization = `Bearer ${token}`
  // A FormData body (an upload) sets its own multipart Content-Type, with the boundary.
  const form = typeof FormData !== 'undefined' && body instanceof FormData
  if (body !== undefined && !form) headers['Content-Type'] = 'application/json'
  try {
    return await fetch(API_BASE + path, {
      method,
      headers,
      body: body === undefined ? undefined : form ? body : JSON.stringify(body),
      signal: options.signal,
      cache: 'no-store',
    })
  } catch (err) {
    if (err instanceof DOMException && err.name === 'AbortError') throw err
    throw new ApiError(CODE_NETWORK, err instanceof Error ? err.message : String(err), 0)
  }
}

/** Turns a non-success answer into an ApiError (reads the body). */
async function failure(response: Response, options: RequestOptions): Promise<ApiError> {
  let parsed: unknown = null
  try {
    parsed = await response.json()
  } catch {
    parsed = null
  }
  let error: ApiError
  if (isRecord(parsed) && typeof parsed.status_code === 'number') {
    const { status_code: code, status_msg: msg, ...extra } = parsed
    error = new ApiError(code, typeof msg === 'string' ? msg : `HTTP ${response.status}`, response.status, extra)
  } else {
    error = new ApiError(CODE_NETWORK, `HTTP ${response.status} ${response.statusText}`.trim(), response.status)
  }
  if (error.badToken && !options.anonymous) hooks.onBadToken()
  return error
}

/** A JSON request (or a multipart one when body is a FormData); resolves to the envelope's fields on status_code 1000, else throws ApiError. */
export async function request<T>(
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
  path: string,
  body?: unknown,
  options: RequestOptions = {},
): Promise<T> {
  const response = await send(method, path, body, options)
  if (!response.ok) throw await failure(response, options)
  let parsed: unknown
  try {
    parsed = await response.json()
  } catch {
    throw new ApiError(CODE_NETWORK, 'the server answered something that is not JSON', response.status)
  }
  if (!isRecord(parsed) || parsed.status_code !== 1000) {
    const envelope = parsed as Partial<Envelope>
    throw new ApiError(
      typeof envelope.status_code === 'number' ? envelope.status_code : CODE_NETWORK,
      typeof envelope.status_msg === 'string' ? envelope.status_msg : 'unexpected answer',
      response.status,
    )
  }
  return parsed as T
}

/**
 * Opens an SSE answer: resolves to the Response once the server accepted it (HTTP 200,
 * text/event-stream), or throws the ApiError it answered instead.
 */
export async function openStream(
  method: 'GET' | 'POST',
  path: string,
  body: unknown,
  options: RequestOptions = {},
): Promise<Response & { body: ReadableStream<Uint8Array> }> {
  const response = await send(method, path, body, {
    ...options,
    headers: { Accept: 'text/event-stream', ...options.headers },
  })
  if (!response.ok) throw await failure(response, options)
  const type = response.headers.get('content-type') ?? ''
  if (!type.startsWith('text/event-stream') || response.body === null) {
    throw new ApiError(CODE_NETWORK, `expected an event stream, got ${type || 'nothing'}`, response.status)
  }
  return response as Response & { body: ReadableStream<Uint8Array> }
}
