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
    env: { BACKGROUND_SYNC: 'on', SYNC_DYNAMICS_POLL_INTERVAL_MS: '200', LOG_LEVEL: 'info', ...steadyMarketoPolls(env), ...env }
  })
}

/**
 * A test that sets SYNC_MARKETO_POLL_INTERVAL_MS wants the feed read that often. The pace adapts to
 * the budget (marketo-poll-pace.ts): at idle it would slow towards SYNC_MARKETO_POLL_MAX_INTERVAL_MS
 * and what the daily budget pays for. Unless the test sets them, the slowest pace is the fastest one
 * and the budget is large, so the feed is read at that interval, as the test asked. Tests of the pace
 * itself set both.
 */
function steadyMarketoPolls (env: Readonly<Record<string, string>>): Record<string, string> {
  const interval = env.SYNC_MARKETO_POLL_INTERVAL_MS
  if (interval === undefined) return {}
  return { SYNC_MARKETO_POLL_MAX_INTERVAL_MS: interval, MARKETO_DAILY_CALL_BUDGET: '1000000' }
}
