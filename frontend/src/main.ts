import { createApp } from 'vue'
import { createPinia } from 'pinia'

import 'element-plus/theme-chalk/dark/css-vars.css'
import './styles/main.css'

import App from './App.vue'
import router from './router'
import { configureHttp } from './api/http'
import { createAppI18n } from './locales'
import { useAuthStore } from './stores/auth'
import { useChatsStore } from './stores/chats'
import { useDocumentsStore } from './stores/documents'
import { useSettingsStore } from './stores/settings'

const app = createApp(App)
const pinia = createPinia()
app.use(pinia)

const settings = useSettingsStore()
app.use(createAppI18n(settings.locale))

const auth = useAuthStore()
configureHttp({
  getToken: () => auth.token,
  onBadToken: () => {
    // Expired or revoked: back to the login page, which says why, then back here.
    auth.expire()
    useChatsStore().reset()
    useDocumentsStore().reset()
    const current = router.currentRoute.value
    if (current.name !== 'login') {
      void router.replace({ name: 'login', query: current.fullPath === '/' ? {} : { redirect: current.fullPath } })
    }
  },
})

app.use(router)
app.mount('#app')
