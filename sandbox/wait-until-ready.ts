import { setTimeout as delay } from 'node:timers/promises'

/**
 * Polls a readiness URL until it answers 200. The API answers `/health/ready` 200 only once it
 * listens and reaches Redis, which is what the flow-step install (Marketo fetching
 * `/openapi.json`) and the first invocation need.
 */
export class NotReadyInTimeError extends Error {
  readonly code = 'SANDBOX_SERVICE_NOT_READY'
  constructor (url: string, timeoutMs: number, lastProblem: string) {
    super(`${url} did not answer 200 within ${timeoutMs / 1000} s (last: ${lastProblem})`)
    this.name = 'NotReadyInTimeError'
  }
}

export async function waitUntilReady (url: string, { timeoutMs, intervalMs = 100, signal }: { timeoutMs: number, intervalMs?: number, signal?: AbortSignal }): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let lastProblem = 'no answer yet'
  for (;;) {
    signal?.throwIfAborted()
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(Math.max(intervalMs, 1_000)) })
      await response.body?.cancel()
      if (response.status === 200) return
      lastProblem = `HTTP ${response.status}`
    } catch (error) {
      // Connection refused until the API listens: expected while it starts.
      lastProblem = (error as Error).cause instanceof Error ? ((error as Error).cause as Error).message : (error as Error).message
    }
    if (Date.now() >= deadline) throw new NotReadyInTimeError(url, timeoutMs, lastProblem)
    await delay(intervalMs, undefined, signal === undefined ? {} : { signal })
  }
}
