import type { FlowStepPerson } from '../domain/person.ts'
import type { RecordType } from '../domain/record-type.ts'

export interface FlowStepJobData {
  readonly invocationId: string
  readonly munchkinId: string
  readonly campaignId: number
  readonly triggered: boolean
  readonly callbackUrl: string
  /**
   * Marketo's one-time callback token and callback API key, sealed (see src/crypto/sealed-box.ts):
   * BullMQ keeps job data in Redis in clear, and these are credentials.
   */
  readonly sealedCallbackCredentials: string
  readonly persons: readonly FlowStepPerson[]
  readonly receivedAt: string
  /** Outcomes decided by earlier tries of this job; a retry only redoes the others. */
  readonly settledOutcomes?: readonly PersonOutcome[]
  /**
   * Set, with the outcome counts, in the same write that strips the persons' fields once the
   * callback is queued: a run of the job after that (its process died before BullMQ recorded the
   * completion) has nothing left to do, and must not sync persons it no longer has the fields of.
   */
  readonly callbackQueued?: { readonly created: number, readonly existed: number, readonly failed: number }
}

export type PersonOutcomeKind = 'created' | 'existed' | 'failed'

export interface PersonOutcome {
  readonly marketoId: number
  readonly kind: PersonOutcomeKind
  readonly recordType?: RecordType
  readonly recordId?: string
  readonly errorCode?: string
  readonly reason?: string
}

export interface FlowCallbackJobData {
  readonly invocationId: string
  readonly munchkinId: string
  readonly callbackUrl: string
  readonly sealedCallbackCredentials: string
  readonly outcomes: readonly PersonOutcome[]
}

export interface CallbackCredentials {
  readonly token: string
  readonly apiCallBackKey: string
}

/** A Dynamics change pass (src/background-sync/dynamics-change-job.ts): the table whose changes it reads. */
export interface DynamicsChangePassJobData {
  readonly table: 'lead' | 'contact'
}

/** A Marketo lead-change pass (src/background-sync/marketo-change-scheduler.ts): one feed, persons linked to leads and contacts alike. */
export interface MarketoChangePassJobData {
  readonly feed: 'person'
}
