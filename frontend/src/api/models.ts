import { request } from './http'
import type { ModelInfo } from './types'

export async function listModels(): Promise<ModelInfo[]> {
  return (await request<{ models: ModelInfo[] }>('GET', '/AI/chat/models')).models
}
