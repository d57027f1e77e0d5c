import { randomUUID } from 'node:crypto'
import {
  boundaryOf,
  countOperations,
  formatBatchResponse,
  parseBatchBody,
  type BatchOperation,
  type BatchPartAnswer,
  type BatchResultEntry
} from './batch-multipart.ts'
import { DataverseError } from './dataverse-error.ts'
import { findEntityDefinition } from './entity-model.ts'
import type { DataverseRecord, DataverseRecordStore } from './record-store.ts'

/**
 * `POST /api/data/v9.2/$batch` (reference doc §3; PAD `webapi/execute-batch-operations-using-web-api.md`):
 * requests run one after another in order, each through the emulator's own single-request handling
 * (`serve`), so validation, authorship columns and change tracking are those of a lone request.
 *
 * - A change set is all-or-nothing: when one of its requests fails, the ones before it are undone and
 *   the change set answers with that one error part (the doc does not show the shape; inferred, §3).
 * - `Content-ID: n` inside a change set makes `$n` stand for the row that request created or
 *   addressed, in later request lines (`PATCH $1`) and in body strings (`"x@odata.bind":"$1"`).
 * - At most 1,000 requests per batch.
 * - Processing stops at the first failure and the batch answers with that failure's status, unless
 *   `Prefer: odata.continue-on-error`: then every request runs and the batch answers 200.
 *
 * Undoing goes through the store's public writes, so a rolled-back change set is not invisible to
 * change tracking as it would be in Dataverse: an undone create leaves a tombstone for an id no read
 * ever returned, an undone update gives the row a new version with its old values.
 */

export const MAX_BATCH_REQUESTS = 1000

export interface BatchPartRequest {
  readonly method: string
  /** The absolute URL the request addresses, `$n` references resolved. */
  readonly url: URL
  /** The path after `/api/data/v9.2/`, percent-decoded, as the router takes it. */
  readonly resource: string
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
}

/** Runs one inner request as if it had come alone; refusals come back as answers, never thrown. */
export type ServeBatchPart = (part: BatchPartRequest) => Promise<BatchPartAnswer>

export interface BatchRequest {
  readonly contentType: string | undefined
  readonly body: string
  /** The outer request's `Prefer` header. */
  readonly prefer: string
  /** `http://host:port/api/data/v9.2/` as the client addressed the batch. */
  readonly base: string
}

export interface BatchAnswer {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
}

const WEB_API_PATH = '/api/data/v9.2/'

export async function executeBatch (request: BatchRequest, serve: ServeBatchPart, store: DataverseRecordStore): Promise<BatchAnswer> {
  const boundary = boundaryOf(request.contentType)
  if (boundary === undefined) {
    throw new DataverseError(400, '0x0', 'The batch request must have a Content-Type of multipart/mixed with a boundary.')
  }
  const entries = parseBatchBody(request.body, boundary)
  const count = countOperations(entries)
  if (count > MAX_BATCH_REQUESTS) {
    // The doc states the limit (§3) but shows no error; code and text are the emulator's.
    throw new DataverseError(400, '0x0', `The number of requests in the batch (${count}) exceeds the limit of ${MAX_BATCH_REQUESTS}.`)
  }
  const continueOnError = request.prefer.split(',').some((preference) => preference.trim() === 'odata.continue-on-error')

  const results: BatchResultEntry[] = []
  let failedStatus: number | undefined
  for (const entry of entries) {
    if (entry.kind === 'request') {
      const answer = await serveOperation(entry.operation, new Map(), request.base, serve)
      results.push({ kind: 'response', answer })
      if (answer.status >= 400) failedStatus ??= answer.status
    } else {
      const outcome = await runChangeSet(entry.operations, request.base, serve, store)
      results.push(outcome)
      if (outcome.kind === 'response') failedStatus ??= outcome.answer.status
    }
    if (failedStatus !== undefined && !continueOnError) break
  }

  const batchBoundary = `batchresponse_${randomUUID()}`
  const headers: Record<string, string> = {
    'Content-Type': `multipart/mixed; boundary=${batchBoundary}`,
    'OData-Version': '4.0'
  }
  if (continueOnError) headers['Preference-Applied'] = 'odata.continue-on-error'
  return {
    status: continueOnError || failedStatus === undefined ? 200 : failedStatus,
    headers,
    body: formatBatchResponse(results, batchBoundary, () => `changesetresponse_${randomUUID()}`)
  }
}

/** How to put one row back as it was before a change set touched it. */
interface UndoStep {
  readonly entitySet: string
  readonly id: string
  /** The row before the change set's request; undefined when that request created it. */
  readonly before: DataverseRecord | undefined
}

async function runChangeSet (
  operations: readonly BatchOperation[],
  base: string,
  serve: ServeBatchPart,
  store: DataverseRecordStore
): Promise<BatchResultEntry> {
  const references = new Map<string, string>()
  const undo: UndoStep[] = []
  const answers: Array<{ answer: BatchPartAnswer, contentId: string | undefined }> = []
  for (const operation of operations) {
    const resolved = resolveOperation(operation, references, base)
    let answer: BatchPartAnswer
    let addressed: AddressedRow | undefined
    if (resolved instanceof DataverseError) {
      answer = errorAnswer(resolved)
    } else {
      addressed = addressedRow(resolved)
      if (addressed === 'unsupported') {
        answer = errorAnswer(new DataverseError(501, '0x0',
          `The Dataverse emulator runs only creates, updates, upserts and deletes of single rows inside a change set, not '${resolved.method} ${resolved.resource}'.`))
      } else {
        const before = addressed.id === undefined ? undefined : store.get(addressed.entitySet, addressed.id)
        answer = await serve(resolved)
        if (answer.status < 400) {
          const rowUrl = addressed.id === undefined ? createdRowUrl(answer, addressed.entitySet) : resolved.url.href.replace(/\?.*$/, '')
          const id = addressed.id ?? (rowUrl === undefined ? undefined : /\(([0-9a-fA-F-]{36})\)$/.exec(rowUrl)?.[1]?.toLowerCase())
          if (id !== undefined) undo.push({ entitySet: addressed.entitySet, id, before })
          if (operation.contentId !== undefined && rowUrl !== undefined) references.set(operation.contentId, rowUrl)
        }
      }
    }
    if (answer.status >= 400) {
      rollBack(undo, store)
      return { kind: 'response', answer, contentId: operation.contentId }
    }
    answers.push({ answer, contentId: operation.contentId })
  }
  return { kind: 'changeset', answers }
}

function rollBack (undo: readonly UndoStep[], store: DataverseRecordStore): void {
  for (const { entitySet, id, before } of [...undo].reverse()) {
    const now = store.get(entitySet, id)
    if (before === undefined) {
      if (now !== undefined) store.delete(entitySet, id)
    } else if (now === undefined) {
      store.insert(entitySet, before)
    } else {
      store.update(entitySet, id, before)
    }
  }
}

type AddressedRow = { readonly entitySet: string, readonly id: string | undefined } | 'unsupported'

/** The row a change-set request writes: `set(<guid>)` for PATCH/DELETE, `set` for a create. */
function addressedRow (request: BatchPartRequest): AddressedRow {
  const match = /^([A-Za-z_]\w*)(?:\((?:[A-Za-z_]\w*=)?\{?([0-9a-fA-F-]{36})\}?\))?$/.exec(request.resource)
  const definition = match === null ? undefined : findEntityDefinition(match[1] ?? '')
  if (match === null || definition === undefined) return 'unsupported'
  const id = match[2]?.toLowerCase()
  if (id === undefined) return request.method === 'POST' ? { entitySet: definition.entitySet, id: undefined } : 'unsupported'
  return request.method === 'PATCH' || request.method === 'DELETE' ? { entitySet: definition.entitySet, id } : 'unsupported'
}

/** A create answers 204 + `OData-EntityId`, or 201 + the row with `return=representation` (§1.3). */
function createdRowUrl (answer: BatchPartAnswer, entitySet: string): string | undefined {
  const header = Object.entries(answer.headers).find(([name]) => name.toLowerCase() === 'odata-entityid')?.[1]
  if (header !== undefined) return header
  const definition = findEntityDefinition(entitySet)
  try {
    const row = JSON.parse(answer.body) as Record<string, unknown>
    const id = definition === undefined ? undefined : row[definition.primaryKey]
    const context = typeof row['@odata.context'] === 'string' ? row['@odata.context'] : ''
    return typeof id === 'string' ? `${context.replace(/\$metadata#.*$/, '')}${entitySet}(${id})` : undefined
  } catch {
    return undefined
  }
}

async function serveOperation (operation: BatchOperation, references: ReadonlyMap<string, string>, base: string, serve: ServeBatchPart): Promise<BatchPartAnswer> {
  const resolved = resolveOperation(operation, references, base)
  return resolved instanceof DataverseError ? errorAnswer(resolved) : await serve(resolved)
}

function contentIdMissing (reference: string): DataverseError {
  return new DataverseError(400, '0x0', `Content-ID Reference: '${reference}' does not exist in the batch context.`)
}

/** Resolves `$n` in the request line and in body strings, and the URL forms a request line may take (§3). */
function resolveOperation (operation: BatchOperation, references: ReadonlyMap<string, string>, base: string): BatchPartRequest | DataverseError {
  let target = operation.target
  const reference = /^\$([^/?]+)/.exec(target)
  if (reference !== null) {
    const rowUrl = references.get(reference[1] ?? '')
    if (rowUrl === undefined) return contentIdMissing(reference[0])
    target = rowUrl + target.slice(reference[0].length)
  }
  // Whole JSON strings that are a known reference, as in `"primarycontactid@odata.bind":"$1"`; any
  // other "$…" text is data, and an unknown reference in a binding fails its own validation.
  const body = references.size === 0
    ? operation.body
    : operation.body.replace(/"\$([A-Za-z0-9_-]+)((?:\/[^"]*)?)"/g, (whole, id: string, rest: string) => {
      const rowUrl = references.get(id)
      return rowUrl === undefined ? whole : JSON.stringify(rowUrl + rest)
    })
  let url: URL
  try {
    url = new URL(target, base)
  } catch {
    return new DataverseError(400, '0x0', `The request URI '${operation.target}' in the batch is not valid.`)
  }
  let path: string
  try {
    path = decodeURIComponent(url.pathname)
  } catch {
    return new DataverseError(400, '0x0', 'The request URI is not valid.')
  }
  if (!path.startsWith(WEB_API_PATH)) {
    return new DataverseError(404, '0x0', `No HTTP resource was found that matches the request URI '${url.href}'.`)
  }
  const resource = path.slice(WEB_API_PATH.length)
  if (resource === '$batch') return new DataverseError(400, '0x0', 'A batch request cannot contain another batch request.')
  return { method: operation.method, url, resource, headers: operation.headers, body }
}

export function errorAnswer (error: DataverseError): BatchPartAnswer {
  return {
    status: error.status,
    headers: { 'Content-Type': 'application/json; odata.metadata=minimal', 'OData-Version': '4.0', ...error.headers },
    body: JSON.stringify(error.toBody())
  }
}
