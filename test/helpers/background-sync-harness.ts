import type { Test } from 'tap'
import { startFlowStepHarness } from './flow-step-harness.ts'

/**
 * The flow-step harness with the background sync on and its passes a few hundred milliseconds apart,
 * so a change from Dynamics travels within a test's deadline (Marketo's stay at their default unless `env` says). The emulated Marketo already has every field of the
 * default mapping (the native sync's `microsoft…` custom fields included). `env` adds to or
 * overrides these settings; the worker is started by the test (`harness.startWorker()`).
 */
export async function startBackgroundSyncHarness (t: Pick<Test, 'teardown'>, env: Readonly<Record<string, string>> = {}): Promise<Awaited<ReturnType<typeof startFlowStepHarness>>> {
  return await startFlowStepHarness(t, {
    withWorker: false,
    env: { BACKGROUND_SYNC: 'on', SYNC_DYNAMICS_POLL_INTERVAL_MS: '200', LOG_LEVEL: 'info', ...env }
  })
}
