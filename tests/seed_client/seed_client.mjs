// The seed's browser code (shared/seed/, handleStreaming), kept as written: only
// Vue's refs, ElMessage and requestAnimationFrame are replaced by plain stand-ins
// so it runs in Node. Usage: node seed_client.mjs BASE_URL TOKEN QUESTION [SESSION_ID]
// Prints {sessionId, content, status} as JSON.
const [baseUrl, token, question, existingSession] = process.argv.slice(2)

const ref = (value) => ({ value })
const currentMessages = ref([])
const sessions = ref({})
const tempSession = ref(!existingSession)
const currentSessionId = ref(existingSession || '')
const selectedModel = ref('1')
const loading = ref(true)
const localStorage = { getItem: () => token }
const ElMessage = { error: (m) => console.error('ElMessage.error', m) }
const requestAnimationFrame = (cb) => setImmediate(cb)
const scrollToBottom = () => {}
const backendBase = `${baseUrl}/api/v1/AI`

async function handleStreaming(question) {
  const aiMessage = { role: 'assistant', content: '', meta: { status: 'streaming' } }
  const aiMessageIndex = currentMessages.value.length
  currentMessages.value.push(aiMessage)
  const url = tempSession.value ? `${backendBase}/chat/send-stream-new-session` : `${backendBase}/chat/send-stream`
  const headers = { 'Content-Type': 'application/json', Authorization: `Bearer ${localStorage.getItem('token') || ''}` }
  const body = tempSession.value
    ? { question: question, modelType: selectedModel.value }
    : { question: question, modelType: selectedModel.value, sessionId: currentSessionId.value }
  try {
    const response = await fetch(url, { method: 'POST', headers, body: JSON.stringify(body) })
    if (!response.ok) {
      loading.value = false
      throw new Error('Network response was not ok')
    }
    const reader = response.body.getReader()
    const decoder = new TextDecoder()
    let buffer = ''
    while (true) {
      const { done, value } = await reader.read()
      if (done) break
      const chunk = decoder.decode(value, { stream: true })
      buffer += chunk
      const lines = buffer.split('\n')
      buffer = lines.pop() || ''
      for (const line of lines) {
        const normalizedLine = line.endsWith('\r') ? line.slice(0, -1) : line
        if (!normalizedLine) continue
        if (normalizedLine.startsWith('data:')) {
          let data = normalizedLine.slice(5)
          if (data.startsWith(' ')) data = data.slice(1)
          if (data === '[DONE]') {
            loading.value = false
            currentMessages.value[aiMessageIndex].meta = { status: 'done' }
            currentMessages.value = [...currentMessages.value]
          } else if (data.startsWith('{')) {
            try {
              const parsed = JSON.parse(data)
              if (parsed.sessionId) {
                const newSid = String(parsed.sessionId)
                if (tempSession.value) {
                  let title = (question || '').trim()
                  if (!title) { title = `会话${newSid}` } else if (title.length > 30) { title = `${title.slice(0, 30)}...` }
                  sessions.value[newSid] = { id: newSid, name: title, messages: [...currentMessages.value] }
                  currentSessionId.value = newSid
                  tempSession.value = false
                }
              } else if (parsed.type === 'delta' && typeof parsed.content === 'string') {
                currentMessages.value[aiMessageIndex].content += parsed.content
              }
            } catch (e) {
              currentMessages.value[aiMessageIndex].content += data
            }
          } else {
            currentMessages.value[aiMessageIndex].content += data
          }
          currentMessages.value = [...currentMessages.value]
          await new Promise((resolve) => { requestAnimationFrame(() => { scrollToBottom(); resolve() }) })
        }
      }
    }
    loading.value = false
    currentMessages.value[aiMessageIndex].meta = { status: 'done' }
    currentMessages.value = [...currentMessages.value]
  } catch (err) {
    console.error('Stream error:', err)
    loading.value = false
    currentMessages.value[aiMessageIndex].meta = { status: 'error' }
    currentMessages.value = [...currentMessages.value]
    ElMessage.error('流式传输出错')
  }
}

await handleStreaming(question)
const answer = currentMessages.value[0]
process.stdout.write(JSON.stringify({ sessionId: currentSessionId.value, content: answer.content, status: answer.meta.status }))
