import { fileURLToPath, URL } from 'node:url'

import { defineConfig } from 'vite'
import vue from '@vitejs/plugin-vue'
import Components from 'unplugin-vue-components/vite'
import { ElementPlusResolver } from 'unplugin-vue-components/resolvers'

// The build goes straight into the Python package: `chatstream serve` serves it at /.
const outDir = fileURLToPath(new URL('../src/chatstream/web', import.meta.url))

// https://vite.dev/config/
export default defineConfig({
  plugins: [
    vue(),
    // Element Plus components (and their CSS) are imported where a template uses them.
    Components({ dirs: [], resolvers: [ElementPlusResolver()], dts: 'components.d.ts' }),
  ],
  define: {
    // vue-i18n: Composition API only, no legacy API or devtools hooks in the bundle.
    __VUE_I18N_LEGACY_API__: 'false',
    __VUE_I18N_FULL_INSTALL__: 'false',
    __INTLIFY_PROD_DEVTOOLS__: 'false',
    __INTLIFY_DROP_MESSAGE_COMPILER__: 'true',
  },
  resolve: {
    alias: {
      '@': fileURLToPath(new URL('./src', import.meta.url)),
      // Messages are compiled by src/locales (compileMessage): no compiler in the bundle.
      'vue-i18n': 'vue-i18n/dist/vue-i18n.runtime.esm-bundler.js',
    },
  },
  build: {
    outDir,
    emptyOutDir: true,
    chunkSizeWarningLimit: 700,
  },
  server: {
    // `npm run dev` against a `make run` server on the default port.
    proxy: { '/api': 'http://127.0.0.1:9090' },
  },
})
