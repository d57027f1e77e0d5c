/**
 * What `/health/ready` checks besides Redis: each dependency by name, so a 503 says which one
 * failed. A check's answer is kept `cacheMs` (5 s by default): orchestrators probe every few
 * seconds, and a failing Azure AD or Marketo identity endpoint must not be asked on every probe.
 * A failure is reported by its error's `code` (AZURE_AD_AUTH_FAILED, MARKETO_AUTH_FAILED, …),
 * never its message, which may carry an outside service's words.
 *
 * Each check is raced against `timeoutMs` (2 s by default) and reported as `TIMEOUT` when it has
 * not settled: a worker pings on a connection that rides out reconnects (`maxRetriesPerRequest:
 * null`, the offline queue on), so while Redis is down its ping never settles, and a probe that
 * hangs tells an orchestrator less than a 503 naming the dependency.
 */
export const DEPENDENCY_CHECK_TIMEOUT_MS = 2_000

export type DependencyName = 'redis' | 'dynamics-token' | 'marketo-token' | 'sync-schedulers'

export interface DependencyCheck {
  readonly name: DependencyName
  /**
   * The process still does its essential work without it: reported (status `degraded`), not a 503.
   * The API takes invocations with Redis alone; a Dynamics token serves only `/getPicklist` there,
   * and an Azure AD outage must not take the API out of a load balancer's rotation.
   */
  readonly optional?: boolean
  check (): Promise<void>
}

export interface DependencyState {
  readonly name: DependencyName
  readonly ok: boolean
  readonly optional?: boolean
  /** Why it failed: an error code, never a message. */
  readonly code?: string
}

export class DependencyCheckFailedError extends Error {
  constructor (readonly code: string, message: string) {
    super(message)
    this.name = 'DependencyCheckFailedError'
  }
}

export function cachedCheck (inner: DependencyCheck, { cacheMs = 5_000, now = Date.now, timeoutMs = DEPENDENCY_CHECK_TIMEOUT_MS }: { cacheMs?: number, now?: () => number, timeoutMs?: number } = {}): DependencyCheck & { readonly state: () => Promise<DependencyState> } {
  let cached: { at: number, state: Promise<DependencyState> } | undefined
  const state = async (): Promise<DependencyState> => {
    if (cached === undefined || now() - cached.at >= cacheMs) {
      cached = {
        at: now(),
        state: withTimeout(inner.check(), timeoutMs).then(
          () => ({ name: inner.name, ok: true }),
          (error: unknown) => ({ name: inner.name, ok: false, code: errorCode(error) }))
      }
    }
    return await cached.state
  }
  return {
    name: inner.name,
    ...(inner.optional === true ? { optional: true } : {}),
    state,
    async check () {
      const answer = await state()
      if (!answer.ok) throw new DependencyCheckFailedError(answer.code ?? 'UNKNOWN', `${answer.name} failed`)
    }
  }
}

/** Runs every check (each cached), side by side. */
export async function checkDependencies (checks: readonly DependencyCheck[], { timeoutMs = DEPENDENCY_CHECK_TIMEOUT_MS }: { timeoutMs?: number } = {}): Promise<DependencyState[]> {
  return await Promise.all(checks.map(async (check) => {
    const state: DependencyState = 'state' in check && typeof check.state === 'function'
      ? await withTimeout((check.state as () => Promise<DependencyState>)(), timeoutMs).catch((error: unknown) => ({ name: check.name, ok: false, code: errorCode(error) }))
      : await withTimeout(check.check(), timeoutMs).then(() => ({ name: check.name, ok: true }), (error: unknown) => ({ name: check.name, ok: false, code: errorCode(error) }))
    return check.optional === true ? { ...state, optional: true } : state
  }))
}

/** Pure: `unavailable` when a required dependency failed (503), `degraded` when only an optional one did. */
export function readinessStatus (states: readonly DependencyState[]): 'ok' | 'degraded' | 'unavailable' {
  if (states.some((state) => !state.ok && state.optional !== true)) return 'unavailable'
  return states.some((state) => !state.ok) ? 'degraded' : 'ok'
}

/** Settles as `work` does, or rejects with TIMEOUT after `ms`; the timer is cleared either way. */
async function withTimeout<T> (work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => { reject(new DependencyCheckFailedError('TIMEOUT', `no answer within ${ms} ms`)) }, ms)
  })
  try {
    return await Promise.race([work, timeout])
  } finally {
    clearTimeout(timer)
  }
}

function errorCode (error: unknown): string {
  const code = (error as { code?: unknown } | undefined)?.code
  return typeof code === 'string' && /^[A-Za-z0-9_.-]{1,64}$/.test(code) ? code : (error as Error | undefined)?.name ?? 'UNKNOWN'
}
