// The user's documents: the list, uploads (checked here first), deletes, and polling the list
// while some document is still queued or being indexed.

import { defineStore } from 'pinia'
import { computed, ref } from 'vue'

import { getConfig } from '@/api/auth'
import * as docsApi from '@/api/documents'
import { ApiError } from '@/api/http'
import type { DocumentChunk, DocumentInfo } from '@/api/types'

/** What the server reads (the file picker offers these). */
export const DOCUMENT_EXTENSIONS = ['.md', '.markdown', '.txt', '.text', '.pdf', '.docx', '.html', '.htm'] as const
/** How often the list is read again while a document is being indexed. */
export const POLL_MS = 1500
const MAX_BACKOFF = 8
/** "document does not exist" (also: not yours). */
const CODE_NO_DOCUMENT = 2012

export type CheckReason = 'type' | 'empty' | 'size'

/** A file refused before upload; the UI words it from `reason` (and `limit`, in bytes). */
export class DocumentCheckError extends Error {
  constructor(
    readonly reason: CheckReason,
    readonly fileName: string,
    readonly limit: number | null = null,
  ) {
    super(`${fileName}: ${reason}`)
    this.name = 'DocumentCheckError'
  }
}

export function extensionOf(name: string): string {
  const dot = name.lastIndexOf('.')
  return dot < 0 ? '' : name.slice(dot).toLowerCase()
}

/** Null when the file may go to the server; the server checks the content itself. */
export function checkFile(file: { name: string; size: number }, maxBytes: number | null): DocumentCheckError | null {
  if (!(DOCUMENT_EXTENSIONS as readonly string[]).includes(extensionOf(file.name))) {
    return new DocumentCheckError('type', file.name)
  }
  if (file.size === 0) return new DocumentCheckError('empty', file.name)
  if (maxBytes !== null && file.size > maxBytes) return new DocumentCheckError('size', file.name, maxBytes)
  return null
}

export function isPending(doc: DocumentInfo): boolean {
  return doc.status === 'queued' || doc.status === 'indexing'
}

/** A file on its way to the server. */
export interface Upload {
  key: string
  name: string
  size: number
}

let uploadKeys = 0

export const useDocumentsStore = defineStore('documents', () => {
  const documents = ref<DocumentInfo[]>([])
  const loaded = ref(false)
  const loading = ref(false)
  const error = ref<string | null>(null)
  const uploads = ref<Upload[]>([])
  /** The server's size limit (GET /config `documentMaxBytes`), null when it does not say. */
  const maxBytes = ref<number | null>(null)
  /** False when the server says it cannot index or search documents: the UI hides them. */
  const available = ref(true)
  /** Whether the list is read again while documents are pending (a view shows them). */
  const polling = ref(false)

  const pending = computed(() => documents.value.filter(isPending))
  const ready = computed(() => documents.value.filter((d) => d.status === 'ready'))

  let configLoaded: Promise<void> | null = null
  let timer: ReturnType<typeof setTimeout> | null = null
  let failures = 0
  /** Bumped by reset (logout): answers to older requests are dropped. */
  let generation = 0
  /** Each list request's number; the newest applied one. */
  let listSeq = 0
  let appliedSeq = 0
  /** Documents this tab uploaded, with the list request that was the newest then. */
  const uploadedAt = new Map<string, number>()
  const deleting = new Set<string>()

  function loadConfig(): Promise<void> {
    configLoaded ??= getConfig()
      .then((config) => {
        const limit = config.documentMaxBytes
        maxBytes.value = typeof limit === 'number' && limit > 0 ? limit : null
        available.value = config.documents !== false
      })
      .catch(() => {
        configLoaded = null // the server checks anyway; ask again next time
      })
    return configLoaded
  }

  /** A list answer: the server's truth, minus documents being deleted, plus uploads it could not know of yet. */
  function apply(list: DocumentInfo[], seq: number): void {
    if (seq < appliedSeq) return // an older request answered late
    appliedSeq = seq
    const listed = new Set(list.map((d) => d.id))
    const newer = documents.value.filter((d) => !listed.has(d.id) && (uploadedAt.get(d.id) ?? -1) >= seq)
    for (const id of uploadedAt.keys()) if (listed.has(id) || (uploadedAt.get(id) ?? -1) < seq) uploadedAt.delete(id)
    documents.value = [...newer, ...list.filter((d) => !deleting.has(d.id))]
  }

  async function fetchList(): Promise<boolean> {
    const gen = generation
    const seq = ++listSeq
    const list = await docsApi.listDocuments()
    if (gen !== generation) return false
    apply(list, seq)
    loaded.value = true
    return true
  }

  async function load(): Promise<void> {
    loading.value = true
    error.value = null
    void loadConfig()
    try {
      if (await fetchList()) schedule()
    } catch (err) {
      error.value = err instanceof Error ? err.message : String(err)
      throw err
    } finally {
      loading.value = false
    }
  }

  function schedule(): void {
    if (timer !== null || !polling.value || pending.value.length === 0) return
    timer = setTimeout(() => void tick(), POLL_MS * Math.min(2 ** failures, MAX_BACKOFF))
  }

  async function tick(): Promise<void> {
    timer = null
    if (!polling.value || pending.value.length === 0) return
    try {
      await fetchList()
      failures = 0
    } catch (err) {
      if (err instanceof ApiError && err.badToken) {
        stopPolling() // logged out: the app resets everything
        return
      }
      failures += 1 // the server is away for a moment: ask less often
    }
    schedule()
  }

  /** Reads the list again every POLL_MS while a document is queued or indexing. */
  function startPolling(): void {
    polling.value = true
    schedule()
  }

  function stopPolling(): void {
    polling.value = false
    if (timer !== null) clearTimeout(timer)
    timer = null
  }

  function upsert(doc: DocumentInfo): void {
    const index = documents.value.findIndex((d) => d.id === doc.id)
    if (index >= 0) documents.value[index] = doc
    else documents.value.unshift(doc)
  }

  /**
   * Checks the file, then uploads it (for one chat only with a sessionId). Throws a
   * DocumentCheckError before uploading, or the server's ApiError. `existed`: the same bytes
   * were uploaded before, the answer is that document.
   */
  async function upload(file: File, sessionId: string | null = null): Promise<{ document: DocumentInfo; existed: boolean }> {
    await loadConfig()
    const problem = checkFile(file, maxBytes.value)
    if (problem) throw problem
    const gen = generation
    uploadKeys += 1
    const key = `upload-${uploadKeys}`
    uploads.value.push({ key, name: file.name, size: file.size })
    try {
      const doc = await docsApi.uploadDocument(file, file.name, sessionId)
      const existed = documents.value.some((d) => d.id === doc.id)
      if (gen === generation) {
        upsert(doc)
        uploadedAt.set(doc.id, listSeq)
        schedule()
      }
      return { document: doc, existed }
    } finally {
      uploads.value = uploads.value.filter((u) => u.key !== key)
    }
  }

  async function remove(id: string): Promise<void> {
    deleting.add(id)
    try {
      await docsApi.deleteDocument(id)
    } catch (err) {
      if (!(err instanceof ApiError && err.code === CODE_NO_DOCUMENT)) throw err // gone already: fine
    } finally {
      deleting.delete(id)
    }
    documents.value = documents.value.filter((d) => d.id !== id)
    uploadedAt.delete(id)
  }

  function chunksOf(id: string): Promise<DocumentChunk[]> {
    return docsApi.getChunks(id)
  }

  /** Logout: forget the user's documents and stop polling. */
  function reset(): void {
    generation += 1
    stopPolling()
    documents.value = []
    uploads.value = []
    loaded.value = false
    loading.value = false
    error.value = null
    failures = 0
    appliedSeq = listSeq
    uploadedAt.clear()
    deleting.clear()
  }

  return {
    documents,
    loaded,
    loading,
    error,
    uploads,
    maxBytes,
    available,
    polling,
    pending,
    ready,
    loadConfig,
    load,
    startPolling,
    stopPolling,
    upload,
    remove,
    chunksOf,
    reset,
  }
})
