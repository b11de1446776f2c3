import { defineStore } from 'pinia'
import { computed, ref } from 'vue'

import * as authApi from '@/api/auth'
import type { EmailVerification, RegisterBody } from '@/api/types'
import { load, save } from '@/lib/storage'

const KEYS = { token: 'chatstream.token', username: 'chatstream.username' }

export const useAuthStore = defineStore('auth', () => {
  const token = ref<string | null>(load(KEYS.token))
  const username = ref<string>(load(KEYS.username) ?? '')
  /** Set when the server refused the token; the login page says so. */
  const expired = ref(false)
  const emailVerification = ref<EmailVerification | null>(null)

  const loggedIn = computed(() => token.value !== null)

  function remember(newToken: string, name: string): void {
    token.value = newToken
    username.value = name
    expired.value = false
    save(KEYS.token, newToken)
    save(KEYS.username, name)
  }

  function forget(): void {
    token.value = null
    save(KEYS.token, null)
  }

  async function loadConfig(): Promise<EmailVerification> {
    if (emailVerification.value === null) {
      emailVerification.value = (await authApi.getConfig()).emailVerification
    }
    return emailVerification.value
  }

  async function login(name: string, password: string): Promise<void> {
    const answer = await authApi.login(name, password)
    remember(answer.token, name)
  }

  async function register(body: RegisterBody): Promise<void> {
    const answer = await authApi.register(body)
    remember(answer.token, answer.username)
  }

  async function sendCode(email: string): Promise<void> {
    await authApi.sendCode(email)
  }

  function logout(): void {
    forget()
    expired.value = false
  }

  /** The server said the token is bad (expired, revoked, user gone). */
  function expire(): void {
    if (token.value === null) return
    forget()
    expired.value = true
  }

  return { token, username, expired, emailVerification, loggedIn, loadConfig, login, register, sendCode, logout, expire }
})
