// Wire types of the chatstream API (docs/api.md), camelCase as on the wire.

import type { Source } from '@/lib/chatFrames'

export type { Source }

export interface Envelope {
  status_code: number
  status_msg: string
}

export type EmailVerification = 'off' | 'console' | 'smtp'

export interface PublicConfig {
  version?: string
  emailVerification: EmailVerification
  /** The largest document the server accepts, in bytes (absent: the server does not say). */
  documentMaxBytes?: number | null
  /** The extensions the server reads. */
  documentTypes?: string[]
  /** False when this server cannot index or search documents (no embedding model). */
  documents?: boolean
}

export interface LoginAnswer {
  token: string
}

export interface RegisterAnswer {
  token: string
  username: string
}

export interface RegisterBody {
  email: string
  password: string
  captcha?: string
  username?: string
}

export interface SessionSummary {
  sessionId: string
  name: string
  createdAt: string
  updatedAt: string
  /** Answers in this session use the user's documents. */
  documents?: boolean
}

export interface SessionPage {
  sessions: SessionSummary[]
  nextCursor: string | null
}

export type MessageStatus = 'complete' | 'streaming' | 'stopped' | 'error' | 'interrupted'

export interface HistoryMessage {
  id: number
  is_user: boolean
  role: string
  content: string
  status: MessageStatus
  model: string | null
  error: string | null
  promptTokens?: number | null
  completionTokens?: number | null
  createdAt: string
  /** A document answer: the passages it could cite as [n]. */
  sources?: Source[] | null
  /** A document answer for which no passage matched: the server's note. */
  sourcesNote?: string | null
}

export interface ModelInfo {
  type: string
  label: string
  description: string | null
  provider?: string
  local?: boolean
  available: boolean
  isDefault: boolean
}

// -- documents (RAG) ---------------------------------------------------------------------------

export type DocumentStatus = 'queued' | 'indexing' | 'ready' | 'failed'

export interface DocumentInfo {
  id: string
  name: string
  kind: string
  size: number
  status: DocumentStatus
  /** 0..1 while indexing. */
  progress: number
  chunks: number
  /** Why indexing failed (user-facing). */
  error: string | null
  /** Set when the document belongs to one session only. */
  sessionId: string | null
  createdAt: string
  updatedAt: string
}

export interface DocumentChunk {
  id: string
  ordinal: number
  section: string
  text: string
  tokens: number
}

export type SearchMode = 'hybrid' | 'vector' | 'text'
