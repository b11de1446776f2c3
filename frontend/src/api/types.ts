// Wire types of the chatstream API (docs/api.md), camelCase as on the wire.

export interface Envelope {
  status_code: number
  status_msg: string
}

export type EmailVerification = 'off' | 'console' | 'smtp'

export interface PublicConfig {
  version?: string
  emailVerification: EmailVerification
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
