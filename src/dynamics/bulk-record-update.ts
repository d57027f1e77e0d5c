import { DataverseError } from './dataverse-errors.ts'
import type { DataverseClient } from './dataverse-client.ts'

/**
 * Writes many existing leads or contacts with `UpdateMultiple`, and still writes all but the bad
 * ones when Dynamics refuses some.
 *
 * On a standard table a bulk message is one transaction: one invalid target rolls back the whole
 * request (reference dataverse-web-api-and-msal.md §4; learn.microsoft.com "Use bulk operation
 * messages", On Error behavior), and Dataverse's error does not say which target it was. So a
 * refused batch is split in halves and each half sent again, down to single records: a record
 * refused alone is the culprit and is reported with Dynamics' own code and message (issue 12 §9:
 * parked, the rest of the batch goes on). k bad records among n cost about 2·k·log2(n) extra
 * requests, cheap while most records are good — the case Microsoft says bulk messages are for.
 *
 * Batches go one after another, not in parallel: Microsoft warns that concurrent bulk requests
 * touching the same rows deadlock, and a bulk request's execution time is what counts against the
 * 20-minute service protection budget (§5).
 */

export interface BulkTable {
  readonly entitySet: 'leads' | 'contacts'
  readonly logicalName: 'lead' | 'contact'
  readonly primaryKey: 'leadid' | 'contactid'
}

export const LEAD_TABLE: BulkTable = { entitySet: 'leads', logicalName: 'lead', primaryKey: 'leadid' }
export const CONTACT_TABLE: BulkTable = { entitySet: 'contacts', logicalName: 'contact', primaryKey: 'contactid' }

export interface RecordUpdate {
  /** The row's primary key. */
  readonly id: string
  /** Dataverse columns and their new values; the primary key and `@odata.type` are added here. */
  readonly columns: Readonly<Record<string, unknown>>
}

export interface RejectedRecordUpdate {
  readonly id: string
  /** Dynamics' refusal of this record alone: `code` (e.g. `0x80044331`), `message`, `status`. */
  readonly error: DataverseError
}

export interface BulkUpdateOutcome {
  /** Ids written, in the order given. */
  readonly written: readonly string[]
  readonly rejected: readonly RejectedRecordUpdate[]
}

export interface BulkUpdateOptions {
  /**
   * Records per request. Microsoft sets no count limit on standard tables, only size and time
   * limits, suggests 1,000 small records as a start and asks for it to be configurable so a
   * deployment whose plug-ins make updates slow can send fewer (bulk-operations.md).
   */
  readonly maxBatchSize?: number
}

export const DEFAULT_BULK_BATCH_SIZE = 500

export class DuplicateBulkTargetError extends Error {
  readonly code = 'DUPLICATE_BULK_TARGET'
  constructor (readonly id: string) {
    super(`record ${id} is named twice in one bulk update; merge its columns first`)
    this.name = 'DuplicateBulkTargetError'
  }
}

export type BulkFailureAction = 'split' | 'reject' | 'fail'

/**
 * What a refused bulk request means for the records in it. A record-level refusal (validation
 * 400, conflict 409/412, or a row deleted meanwhile: 404 ObjectDoesNotExist, "Contact With Ids =
 * … Do Not Exist") or a request too large (413) is narrowed down by splitting; once a single
 * record is refused, that record is rejected. Anything else (throttling beyond the client's budget,
 * an outage, our access revoked) says nothing about the records: the whole write fails and is
 * retried later, which is safe because an update of absolute values is idempotent.
 */
export function bulkFailureAction (error: unknown, batchSize: number): BulkFailureAction {
  if (!(error instanceof DataverseError)) return 'fail'
  const aboutTheRecords = error.isRejection ||
    (error.status === 404 && error.code === '0x80040217') ||
    error.status === 413
  if (!aboutTheRecords) return 'fail'
  return batchSize > 1 ? 'split' : 'reject'
}

export async function updateRecordsInBulk (
  client: Pick<DataverseClient, 'updateMultiple'>,
  table: BulkTable,
  updates: readonly RecordUpdate[],
  options: BulkUpdateOptions = {}
): Promise<BulkUpdateOutcome> {
  const maxBatchSize = options.maxBatchSize ?? DEFAULT_BULK_BATCH_SIZE
  if (!Number.isInteger(maxBatchSize) || maxBatchSize < 1) throw new RangeError(`maxBatchSize must be a positive integer, not ${maxBatchSize}`)
  const seen = new Set<string>()
  for (const update of updates) {
    // Two targets for one row in one transaction: which wins is not documented; refuse to guess.
    const id = update.id.toLowerCase()
    if (seen.has(id)) throw new DuplicateBulkTargetError(update.id)
    seen.add(id)
  }

  const written: string[] = []
  const rejected: RejectedRecordUpdate[] = []
  const send = async (batch: readonly RecordUpdate[]): Promise<void> => {
    try {
      await client.updateMultiple(table.entitySet, table.logicalName,
        batch.map((update) => ({ ...update.columns, [table.primaryKey]: update.id })))
      written.push(...batch.map((update) => update.id))
    } catch (error) {
      const action = bulkFailureAction(error, batch.length)
      if (action === 'fail') throw error
      if (action === 'reject') {
        rejected.push({ id: (batch[0] as RecordUpdate).id, error: error as DataverseError })
        return
      }
      const middle = Math.ceil(batch.length / 2)
      await send(batch.slice(0, middle))
      await send(batch.slice(middle))
    }
  }
  for (let start = 0; start < updates.length; start += maxBatchSize) {
    await send(updates.slice(start, start + maxBatchSize))
  }
  return { written, rejected }
}
