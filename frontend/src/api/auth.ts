import { request } from './http'
import type { LoginAnswer, PublicConfig, RegisterAnswer, RegisterBody } from './types'

/** Public: whether registering needs an e-mail code. */
export function getConfig(): Promise<PublicConfig> {
  return request<PublicConfig>('GET', '/config', undefined, { anonymous: true })
}

export function sendCode(email: string): Promise<unknown> {
  return request('POST', '/user/captcha', { email }, { anonymous: true })
}

export function register(body: RegisterBody): Promise<RegisterAnswer> {
  return request<RegisterAnswer>('POST', '/user/register', body, { anonymous: true })
}

export function login(username: string, password: string): Promise<LoginAnswer> {
  return request<LoginAnswer>('POST', '/user/login', { username, password }, { anonymous: true })
}
