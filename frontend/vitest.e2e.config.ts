import { defineConfig } from 'vitest/config'

// Browser tests: real Chromium against a real `chatstream serve` (see e2e/support/).
export default defineConfig({
  test: {
    include: ['e2e/**/*.e2e.ts'],
    environment: 'node',
    globalSetup: ['e2e/support/global-setup.ts'],
    fileParallelism: false, // 2 cores: one browser at a time
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ['default'],
  },
})
