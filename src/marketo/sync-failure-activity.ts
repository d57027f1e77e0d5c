import { MarketoApiError } from './marketo-errors.ts'
import type {
  AddCustomActivityResult, CustomActivityAttributeDefinition, CustomActivityRecord, CustomActivityTypeDefinition, CustomActivityTypeDescription, CustomActivityTypeSummary
} from './marketo-rest-client.ts'

/**
 * The person's Marketo activity log says when the background sync could not write them to
 * Dynamics, with Dynamics' own message (issue 12 §9), as a custom activity (marketo-rest-and-ssfs.md
 * §2.7) — Marketo's native sync leaves such failures invisible to marketers, a documented weakness
 * (marketo-native-dynamics-sync.md). The flow step's outcomes reach the log through its callback
 * (the SSFS activity); the background sync has no callback, so it writes activities itself.
 *
 * The type is made the way Marketo documents it (§2.7, Adobe "Custom Activities"): Create Custom
 * Activity Type takes the type and its primary attribute only, the secondary attributes are added
 * to the draft with Create Custom Activity Type Attributes, and the draft is approved — only the
 * approved version carries activities, and an activity naming an attribute that version lacks loses
 * it. A type found approved without some of ours (an older deployment, or one created by code that
 * sent them inline) gets the missing ones and is approved again. This happens once per process and
 * its type id is kept in this object: no call per failure. Activities go in one Add Custom
 * Activities call per 300 failures, through the shared MarketoRestClient, so they are charged to the
 * shared call budget like every other call.
 */

export interface CustomActivityWriter {
  getCustomActivityTypes: () => Promise<CustomActivityTypeSummary[]>
  describeCustomActivityType: (apiName: string, options?: { draft?: boolean }) => Promise<CustomActivityTypeDescription>
  createCustomActivityType: (definition: CustomActivityTypeDefinition) => Promise<CustomActivityTypeSummary>
  createCustomActivityTypeAttributes: (apiName: string, attributes: readonly CustomActivityAttributeDefinition[]) => Promise<CustomActivityTypeDescription>
  approveCustomActivityType: (apiName: string) => Promise<CustomActivityTypeSummary>
  addCustomActivities: (input: readonly CustomActivityRecord[]) => Promise<AddCustomActivityResult[]>
}

/** Namespaced, as Adobe asks of partners, within the 16 characters its Swagger allows (§2.7). */
export const SYNC_FAILURE_ACTIVITY_TYPE: CustomActivityTypeDefinition = {
  apiName: 'mdsSyncFailed',
  name: 'Microsoft Sync Failed',
  description: 'The background sync could not write this person to Microsoft Dynamics; the change is parked until retried',
  triggerName: 'Microsoft Sync Fails',
  filterName: 'Microsoft Sync Failed',
  primaryAttribute: { apiName: 'dynamicsRecordId', name: 'Dynamics Record Id', description: 'The lead or contact the change was for' }
}

/**
 * The type's secondary attributes, added after the type is created (§2.7). Text where Dynamics'
 * wording goes (a message can exceed a string's 255).
 */
export const SYNC_FAILURE_ACTIVITY_ATTRIBUTES: readonly CustomActivityAttributeDefinition[] = [
  { apiName: 'dynamicsEntity', name: 'Dynamics Entity', dataType: 'string' },
  { apiName: 'errorCode', name: 'Error Code', dataType: 'string' },
  { apiName: 'errorMessage', name: 'Error Message', dataType: 'text' },
  { apiName: 'fields', name: 'Fields', dataType: 'string' }
]

/** "Object already exists" (§2.3): the type, or an attribute, another worker created first. */
const ALREADY_EXISTS = '1017'
/** Approving a type with no draft, "already approved" (§2.3 709, on assets; types are managed like assets). */
const NOTHING_TO_APPROVE = '709'

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

  /** The approved type's id: looked up (and created, completed or approved when needed) once; a failed look-up is tried again next time. */
  async activityTypeId (): Promise<number> {
    this.#typeId ??= this.#ensureType().catch((error: unknown) => {
      this.#typeId = undefined
      throw error
    })
    return await this.#typeId
  }

  /**
   * Calls, once per process: a new type costs list, create, add attributes, approve; a type found
   * approved costs list and one describe (the list shows no attributes, §2.7), plus add attributes
   * and approve when its approved version lacks some of ours.
   */
  async #ensureType (): Promise<number> {
    const apiName = SYNC_FAILURE_ACTIVITY_TYPE.apiName
    const listed = (await this.#marketo.getCustomActivityTypes()).find((candidate) => candidate.apiName === apiName)
    if (listed === undefined) {
      try {
        await this.#marketo.createCustomActivityType(SYNC_FAILURE_ACTIVITY_TYPE)
      } catch (error) {
        // Another worker created it between our look-up and our create: complete its draft with it.
        if (!isMarketoError(error, ALREADY_EXISTS)) throw error
        return await this.#completeAndApprove()
      }
      // Ours, just created: its draft has no secondary attributes yet.
      return await this.#completeAndApprove([])
    }
    if (listed.status === 'draft') return await this.#completeAndApprove()
    if (listed.status !== 'approved' && listed.status !== 'approved with draft') throw new SyncFailureActivityError(listed.status)
    const live = await this.#marketo.describeCustomActivityType(apiName)
    if (missingAttributes(live.attributes).length === 0) return live.id
    // With no draft, the draft the attributes go to is the approved version: no second describe.
    return await this.#completeAndApprove(listed.status === 'approved' ? live.attributes ?? [] : undefined)
  }

  /**
   * Adds to the draft the attributes it lacks, then approves it. Two workers may do this at once:
   * an attribute the other added first (1017) is looked up again, and a draft the other approved
   * first (709) is checked in the approved version.
   */
  async #completeAndApprove (knownDraftAttributes?: ReadonlyArray<{ readonly apiName: string }>): Promise<number> {
    const apiName = SYNC_FAILURE_ACTIVITY_TYPE.apiName
    const draftAttributes = knownDraftAttributes ?? (await this.#marketo.describeCustomActivityType(apiName, { draft: true })).attributes
    const missing = missingAttributes(draftAttributes)
    if (missing.length > 0) {
      try {
        await this.#marketo.createCustomActivityTypeAttributes(apiName, missing)
      } catch (error) {
        if (!isMarketoError(error, ALREADY_EXISTS)) throw error
        const stillMissing = missingAttributes((await this.#marketo.describeCustomActivityType(apiName, { draft: true })).attributes)
        if (stillMissing.length > 0) await this.#marketo.createCustomActivityTypeAttributes(apiName, stillMissing)
      }
    }
    try {
      const approved = await this.#marketo.approveCustomActivityType(apiName)
      if (approved.status !== 'approved') throw new SyncFailureActivityError(approved.status)
      return approved.id
    } catch (error) {
      if (!isMarketoError(error, NOTHING_TO_APPROVE)) throw error
      const live = await this.#marketo.describeCustomActivityType(apiName)
      if (missingAttributes(live.attributes).length > 0) throw new SyncFailureActivityError(`${live.status} without all its attributes`)
      return live.id
    }
  }
}

/** Pure: the attributes of ours a described version of the type lacks (matched by apiName, the attributes' key, §2.7). */
export function missingAttributes (
  present: ReadonlyArray<{ readonly apiName: string }> | undefined,
  wanted: readonly CustomActivityAttributeDefinition[] = SYNC_FAILURE_ACTIVITY_ATTRIBUTES
): CustomActivityAttributeDefinition[] {
  const names = new Set((present ?? []).map((attribute) => attribute.apiName))
  return wanted.filter((attribute) => !names.has(attribute.apiName))
}

function isMarketoError (error: unknown, code: string): boolean {
  return error instanceof MarketoApiError && error.code === code
}
