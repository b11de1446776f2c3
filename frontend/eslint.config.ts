import { globalIgnores } from 'eslint/config'
import { defineConfigWithVueTs, vueTsConfigs } from '@vue/eslint-config-typescript'
import pluginVue from 'eslint-plugin-vue'
import pluginVitest from '@vitest/eslint-plugin'
import pluginOxlint from 'eslint-plugin-oxlint'

export default defineConfigWithVueTs(
  {
    name: 'app/files-to-lint',
    files: ['**/*.{vue,ts,mts,tsx}'],
  },

  globalIgnores(['**/dist/**', '**/dist-ssr/**', '**/coverage/**', 'e2e/.out/**', 'components.d.ts']),

  ...pluginVue.configs['flat/essential'],
  vueTsConfigs.recommended,

  {
    name: 'app/rules',
    rules: {
      // No `any` anywhere: wire data is `unknown` until checked.
      '@typescript-eslint/no-explicit-any': 'error',
    },
  },

  {
    ...pluginVitest.configs.recommended,
    files: ['src/**/__tests__/*', 'e2e/**/*.e2e.ts'],
  },
  {
    files: ['src/**/__tests__/*', 'e2e/**/*.e2e.ts'],
    rules: { 'vitest/valid-expect': ['error', { maxArgs: 2 }] }, // expect(value, message)
  },

  ...pluginOxlint.buildFromOxlintConfigFile('.oxlintrc.json'),
)
