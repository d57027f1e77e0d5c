/**
 * Fault injection for the Azure AD emulator, in the Dataverse emulator's style
 * (sandbox/dataverse/faults.ts): the token endpoint answering late, or — with a long enough delay —
 * not at all, as a token endpoint that accepts the connection and hangs. Counts are consumed one per
 * token request; discovery and keys are answered at once, so a client that already has the
 * authority's metadata meets the fault where it waits for a token.
 */

export interface AzureAdFaultState {
  readonly delayTokens: { readonly count: number, readonly ms: number }
}

export interface AzureAdFaults {
  /** The next `count` token requests are answered only after `ms` milliseconds (or when the emulator closes). */
  delayTokenRequests (count: number, ms: number): void
  clear (): void
  state (): AzureAdFaultState
}

export class AzureAdFaultSettingsError extends Error {
  readonly code = 'INVALID_FAULT_SETTINGS'
  constructor (message: string) {
    super(message)
    this.name = 'AzureAdFaultSettingsError'
  }
}

export class AzureAdFaultInjector implements AzureAdFaults {
  #delayTokens = { count: 0, ms: 0 }

  delayTokenRequests (count: number, ms: number): void {
    this.#delayTokens = { count: checkedCount(count, 'count'), ms: checkedCount(ms, 'ms') }
  }

  clear (): void {
    this.#delayTokens = { count: 0, ms: 0 }
  }

  state (): AzureAdFaultState {
    return { delayTokens: { ...this.#delayTokens } }
  }

  /** How long to hold this token request before answering (0: at once); consumes one count. */
  takeTokenDelay (): number {
    if (this.#delayTokens.count === 0) return 0
    this.#delayTokens.count -= 1
    return this.#delayTokens.ms
  }

  /** Applies the `/_emulator/faults` PUT body. */
  apply (settings: unknown): void {
    if (settings === null || typeof settings !== 'object' || Array.isArray(settings)) {
      throw new AzureAdFaultSettingsError('expected a JSON object {delayTokens?: {count, ms}}')
    }
    const { delayTokens } = settings as Record<string, unknown>
    if (delayTokens !== undefined) {
      const { count, ms } = (delayTokens ?? {}) as Record<string, unknown>
      this.delayTokenRequests(count as number, ms as number)
    }
  }
}

function checkedCount (value: number, name: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    throw new AzureAdFaultSettingsError(`${name} must be a non-negative integer`)
  }
  return value
}
