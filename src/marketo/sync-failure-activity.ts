import { MarketoApiError } from './marketo-errors.ts'
import type { AddCustomActivityResult, CustomActivityRecord, CustomActivityTypeDefinition, CustomActivityTypeSummary } from './marketo-rest-client.ts'

/**
 * The person's Marketo activity log says when the background sync could not write them to
 * Dynamics, with Dynamics' own message (issue 12 §9), as a custom activity (marketo-rest-and-ssfs.md
 * §2.7) — Marketo's native sync leaves such failures invisible to marketers, a documented weakness
 * (marketo-native-dynamics-sync.md). The flow step's outcomes reach the log through its callback
 * (the SSFS activity); the background sync has no callback, so it writes activities itself.
 *
 * The type is created once if missing, then approved (only an approved type carries activities,
 * §2.7), and its id kept in this object: one look-up per process, no call per failure. Activities go
 * in one Add Custom Activities call per 300 failures, through the shared MarketoRestClient, so they
 * are charged to the shared call budget like every other call.
 */

export interface CustomActivityWriter {
  getCustomActivityTypes: () => Promise<CustomActivityTypeSummary[]>
  createCustomActivityType: (definition: CustomActivityTypeDefinition) => Promise<CustomActivityTypeSummary>
  approveCustomActivityType: (apiName: string) => Promise<CustomActivityTypeSummary>
  addCustomActivities: (input: readonly CustomActivityRecord[]) => Promise<AddCustomActivityResult[]>
}

/**
 * Namespaced, as Adobe asks of partners, within the 16 characters its Swagger allows (§2.7).
 * Secondary attributes are text where Dynamics' wording goes (a message can exceed a string's 255).
 */
export const SYNC_FAILURE_ACTIVITY_TYPE: CustomActivityTypeDefinition = {
  apiName: 'mdsSyncFailed',
  name: 'Microsoft Sync Failed',
  description: 'The background sync could not write this person to Microsoft Dynamics; the change is parked until retried',
  triggerName: 'Microsoft Sync Fails',
  filterName: 'Microsoft Sync Failed',
  primaryAttribute: { apiName: 'dynamicsRecordId', name: 'Dynamics Record Id', description: 'The lead or contact the change was for' },
  attributes: [
    { apiName: 'dynamicsEntity', name: 'Dynamics Entity', dataType: 'string' },
    { apiName: 'errorCode', name: 'Error Code', dataType: 'string' },
    { apiName: 'errorMessage', name: 'Error Message', dataType: 'text' },
    { apiName: 'fields', name: 'Fields', dataType: 'string' }
  ]
}

/**
 * Dynamics' messages are short; a bound keeps one activity far below the 65,536 bytes of
 * attributes Marketo refuses with 1049 (§2.3), whatever a plug-in's message holds.
 */
export const MAX_MESSAGE_LENGTH = 2_000

export interface SyncFailure {
  readonly personId: number
  readonly table: 'lead' | 'contact'
  readonly recordId: string
  /** Dynamics' code (or ours when we refused before writing). */
  readonly code: string
  /** Dynamics' own message; it may quote the value, which is why it goes here and nowhere else. */
  readonly message: string
  /** The Marketo fields whose change was refused. */
  readonly fields: readonly string[]
  readonly at: Date
}

export interface SyncFailureLogOutcome {
  /** Persons whose activity log now holds the failure. */
  readonly logged: ReadonlySet<number>
  /** Failures Marketo did not add, with its code (e.g. 1004, the person was deleted). */
  readonly skipped: ReadonlyArray<{ readonly personId: number, readonly code: string }>
}

export class SyncFailureActivityError extends Error {
  readonly code = 'SYNC_FAILURE_ACTIVITY_TYPE_UNUSABLE'
  constructor (status: string) {
    super(`the custom activity type ${SYNC_FAILURE_ACTIVITY_TYPE.apiName} is ${status} in Marketo and cannot carry activities`)
    this.name = 'SyncFailureActivityError'
  }
}

/** Pure: a failure as an Add Custom Activities record. */
export function syncFailureActivity (failure: SyncFailure, activityTypeId: number): CustomActivityRecord {
  return {
    leadId: failure.personId,
    activityDate: failure.at.toISOString(),
    activityTypeId,
    primaryAttributeValue: failure.recordId,
    attributes: [
      { apiName: 'dynamicsEntity', value: failure.table },
      { apiName: 'errorCode', value: failure.code },
      { apiName: 'errorMessage', value: failure.message.length > MAX_MESSAGE_LENGTH ? `${failure.message.slice(0, MAX_MESSAGE_LENGTH - 1)}…` : failure.message },
      { apiName: 'fields', value: failure.fields.join(', ') }
    ]
  }
}

export class SyncFailureActivityLog {
  readonly #marketo: CustomActivityWriter
  #typeId: Promise<number> | undefined

  constructor (marketo: CustomActivityWriter) {
    this.#marketo = marketo
  }

  /** Writes each failure to its person's activity log. Throws what Marketo or the budget threw. */
  async record (failures: readonly SyncFailure[]): Promise<SyncFailureLogOutcome> {
    const logged = new Set<number>()
    const skipped: Array<{ personId: number, code: string }> = []
    if (failures.length === 0) return { logged, skipped }
    const typeId = await this.activityTypeId()
    const results = await this.#marketo.addCustomActivities(failures.map((failure) => syncFailureActivity(failure, typeId)))
    results.forEach((result, index) => {
      const personId = failures[index]!.personId
      if (result.status === 'added') logged.add(personId)
      else skipped.push({ personId, code: result.errors?.[0]?.code ?? 'UNKNOWN' })
    })
    return { logged, skipped }
  }

  /** The approved type's id: looked up (and created or approved when needed) once; a failed look-up is tried again next time. */
  async activityTypeId (): Promise<number> {
    this.#typeId ??= this.#ensureType().catch((error: unknown) => {
      this.#typeId = undefined
      throw error
    })
    return await this.#typeId
  }

  async #ensureType (): Promise<number> {
    const apiName = SYNC_FAILURE_ACTIVITY_TYPE.apiName
    let type = (await this.#marketo.getCustomActivityTypes()).find((candidate) => candidate.apiName === apiName)
    if (type === undefined) {
      try {
        type = await this.#marketo.createCustomActivityType(SYNC_FAILURE_ACTIVITY_TYPE)
      } catch (error) {
        // 1017 "already exists": another worker created it between our look-up and our create.
        if (!(error instanceof MarketoApiError && error.code === '1017')) throw error
        type = (await this.#marketo.getCustomActivityTypes()).find((candidate) => candidate.apiName === apiName)
        if (type === undefined) throw error
      }
    }
    // A draft (ours, created just now or by a worker that died before approving) is approved; an
    // approved type with a draft of changes still carries activities with its approved version.
    if (type.status === 'draft') type = await this.#marketo.approveCustomActivityType(apiName)
    if (type.status !== 'approved' && type.status !== 'approved with draft') throw new SyncFailureActivityError(type.status)
    return type.id
  }
}
