import { ElMessage } from 'element-plus'
import 'element-plus/es/components/message/style/css'
import { useI18n } from 'vue-i18n'

import { copyText } from '@/lib/clipboard'

/** Copies text and says so. */
export function useCopy(): (text: string) => Promise<boolean> {
  const { t } = useI18n()
  return async (text: string) => {
    try {
      await copyText(text)
      ElMessage({ message: t('chat.copied'), type: 'success', duration: 1500, grouping: true })
      return true
    } catch (err) {
      ElMessage({ message: err instanceof Error ? err.message : String(err), type: 'error' })
      return false
    }
  }
}
