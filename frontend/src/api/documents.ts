// The user's documents (RAG): upload, list with indexing status, passages, delete, search.

import { request } from './http'
import type { DocumentChunk, DocumentInfo, SearchMode, Source } from './types'

const DOCS = '/AI/documents'

function one(id: string): string {
  return `${DOCS}/${encodeURIComponent(id)}`
}

/**
 * Uploads a file (multipart field `file`). With a sessionId the document is used in that chat
 * only. The server answers 202 with a queued document, or 200 with the existing one when the
 * same bytes were uploaded before.
 */
export async function uploadDocument(file: Blob, name: string, sessionId: string | null = null): Promise<DocumentInfo> {
  const form = new FormData()
  form.append('file', file, name)
  if (sessionId !== null) form.append('sessionId', sessionId)
  return (await request<{ document: DocumentInfo }>('POST', DOCS, form)).document
}

/** Newest first. */
export async function listDocuments(): Promise<DocumentInfo[]> {
  return (await request<{ documents: DocumentInfo[] }>('GET', DOCS)).documents
}

export async function getDocument(id: string): Promise<DocumentInfo> {
  return (await request<{ document: DocumentInfo }>('GET', one(id))).document
}

export async function getChunks(id: string): Promise<DocumentChunk[]> {
  return (await request<{ chunks: DocumentChunk[] }>('GET', `${one(id)}/chunks`)).chunks
}

export async function deleteDocument(id: string): Promise<void> {
  await request('DELETE', one(id))
}

export interface SearchOptions {
  k?: number
  mode?: SearchMode
  sessionId?: string | null
}

/** The passages an answer to `query` would cite, best first. */
export async function searchDocuments(query: string, options: SearchOptions = {}): Promise<Source[]> {
  const body: Record<string, unknown> = { query }
  if (options.k !== undefined) body.k = options.k
  if (options.mode !== undefined) body.mode = options.mode
  if (options.sessionId) body.sessionId = options.sessionId
  return (await request<{ results: Source[] }>('POST', `${DOCS}/search`, body)).results
}
