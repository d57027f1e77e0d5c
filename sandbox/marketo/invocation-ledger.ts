import type { InstalledService } from './installed-service.ts'

/**
 * Every invocation the campaign runner sent, by its one-time callback token (reference §1.6):
 * the callback endpoint looks the token up to authenticate the callback (`x-api-key` must equal
 * the `apiCallBackKey` issued with it) and to know which persons and flow-step values it covers.
 */

export type CampaignKind = 'trigger' | 'batch'

/**
 * `awaiting-callback` from just before the POST (a fast service may call back before its 201
 * arrives), `completed` once a callback was accepted (the token is single-use), and
 * `refused-by-service` when the service did not answer 201 — Marketo counts that invocation as
 * failed, so its token no longer opens the callback endpoint (our choice; §4 q2).
 */
export type InvocationState = 'awaiting-callback' | 'completed' | 'refused-by-service'

export interface InvocationRecord {
  readonly token: string
  readonly batchid: string
  readonly apiCallBackKey: string
  readonly campaignId: number
  readonly kind: CampaignKind
  readonly service: InstalledService
  readonly personIds: readonly number[]
  readonly flowStepContext: Readonly<Record<string, unknown>>
  state: InvocationState
  /** HTTP status the service answered the invocation with; 0 when it could not be reached. */
  invocationStatus?: number
}

export class InvocationLedger {
  readonly #byToken = new Map<string, InvocationRecord>()

  open (record: Omit<InvocationRecord, 'state'>): InvocationRecord {
    const opened: InvocationRecord = { ...record, state: 'awaiting-callback' }
    this.#byToken.set(record.token, opened)
    return opened
  }

  get (token: string): InvocationRecord | undefined {
    return this.#byToken.get(token)
  }

  list (): InvocationRecord[] {
    return [...this.#byToken.values()]
  }
}
