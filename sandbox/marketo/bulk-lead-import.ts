import { BULK_FILE_DELIMITERS, formatDelimitedRow, isBulkFileFormat, parseDelimitedRows, type BulkFileFormat } from './delimited-file.ts'
import type { LeadFieldCatalog } from './lead-fields.ts'
import { boundaryOf, parseMultipartForm } from './multipart-form.ts'
import type { ChangeSource, PersonStore } from './person-store.ts'
import { restErrors, type RestSuccess } from './rest-envelope.ts'

/**
 * Bulk Lead Import (reference "Bulk lead import", Adobe "Bulk Lead Import"): a delimited file
 * becomes a job in a FIFO queue; at most 2 jobs are processed at once and at most 10 are in the
 * queue counting those 2 — past that the request fails with 1016 Too many imports. Each row is
 * "insert or update" by `lookupField` (default email). The job's status moves Queued → Importing →
 * Complete; rows that could not be imported go to the failures file and rows imported with a
 * caveat to the warnings file, each the original row plus a reason column.
 *
 * Here a job finishes one `tickMs` after it starts, unless the queue is held (test control), so
 * tests can see jobs waiting and reach the queue limit without racing the clock.
 */

export const MAX_RUNNING_IMPORTS = 2
export const MAX_QUEUED_IMPORTS = 10
const DEFAULT_TICK_MS = 20
const FAILURE_REASON_COLUMN = 'Import Failure Reason'
const WARNING_REASON_COLUMN = 'Import Warning Reason'

export type BulkImportStatus = 'Queued' | 'Importing' | 'Complete' | 'Failed'

interface ImportJob {
  readonly batchId: number
  readonly format: BulkFileFormat
  readonly lookupField: string
  readonly file: string
  readonly requestId: string
  status: BulkImportStatus
  numOfLeadsProcessed: number
  numOfRowsFailed: number
  numOfRowsWithWarning: number
  message: string
  failures: string
  warnings: string
}

export interface BulkImportDependencies {
  readonly persons: PersonStore
  readonly fields: LeadFieldCatalog
}

export class BulkLeadImports {
  readonly #jobs = new Map<number, ImportJob>()
  readonly #timers = new Set<NodeJS.Timeout>()
  readonly #settledWaiters = new Map<number, Array<() => void>>()
  readonly #deps: BulkImportDependencies
  readonly #tickMs: number
  #nextBatchId = 1
  #held = false
  #closed = false

  constructor (deps: BulkImportDependencies, options: { tickMs?: number } = {}) {
    this.#deps = deps
    this.#tickMs = options.tickMs ?? DEFAULT_TICK_MS
  }

  /** `POST /bulk/v1/leads.json` — multipart with a `file` part; `format` and `lookupField` in the query or the form. */
  submit (contentType: string, body: string, params: URLSearchParams, requestId: string): RestSuccess {
    const boundary = boundaryOf(contentType)
    if (!contentType.toLowerCase().startsWith('multipart/form-data') || boundary === undefined) throw restErrors.invalidContentType()
    const parts = parseMultipartForm(body, boundary)
    if (parts === undefined) throw restErrors.invalidMultipart()
    const formValue = (name: string): string | undefined => params.get(name) ?? parts.find((part) => part.name === name)?.content
    const format = formValue('format')?.trim() ?? ''
    if (format === '') throw restErrors.blank('format')
    if (!isBulkFileFormat(format)) throw restErrors.invalidData(`Invalid format '${format}'`)
    const file = parts.find((part) => part.name === 'file')?.content
    if (file === undefined || file.trim() === '') throw restErrors.blank('file')
    const lookupField = formValue('lookupField')?.trim() || 'email'
    if (!this.#deps.fields.has(lookupField)) throw restErrors.fieldNotFound(lookupField)
    if (this.#waiting().length >= MAX_QUEUED_IMPORTS) throw restErrors.tooManyImports()

    const job: ImportJob = {
      batchId: this.#nextBatchId++,
      format,
      lookupField,
      file,
      requestId,
      status: 'Queued',
      numOfLeadsProcessed: 0,
      numOfRowsFailed: 0,
      numOfRowsWithWarning: 0,
      message: 'Queued for processing',
      failures: '',
      warnings: ''
    }
    this.#jobs.set(job.batchId, job)
    this.#startWaitingJobs()
    return { result: [{ batchId: job.batchId, importId: String(job.batchId), status: 'Queued' }] }
  }

  /** `GET /bulk/v1/leads/batch/{batchId}.json` */
  status (batchId: number): RestSuccess {
    const job = this.#job(batchId)
    return {
      result: [{
        batchId: job.batchId,
        importId: String(job.batchId),
        status: job.status,
        numOfLeadsProcessed: job.numOfLeadsProcessed,
        numOfRowsFailed: job.numOfRowsFailed,
        numOfRowsWithWarning: job.numOfRowsWithWarning,
        message: job.message
      }]
    }
  }

  /** `GET /bulk/v1/leads/batch/{batchId}/failures.json` — a file, not an envelope. */
  failuresFile (batchId: number): string {
    return this.#job(batchId).failures
  }

  /** `GET /bulk/v1/leads/batch/{batchId}/warnings.json` */
  warningsFile (batchId: number): string {
    return this.#job(batchId).warnings
  }

  /** Test control: resolves once the job is Complete or Failed (what a client learns by polling status). */
  async settled (batchId: number): Promise<void> {
    const job = this.#job(batchId)
    if (job.status === 'Complete' || job.status === 'Failed') return
    await new Promise<void>((resolve) => {
      this.#settledWaiters.set(batchId, [...(this.#settledWaiters.get(batchId) ?? []), resolve])
    })
  }

  /** Test control: jobs that start stay Importing until `release()`. */
  hold (): void {
    this.#held = true
  }

  release (): void {
    this.#held = false
    for (const job of this.#jobs.values()) {
      if (job.status === 'Importing') this.#finishAfterTick(job)
    }
  }

  close (): void {
    this.#closed = true
    for (const timer of this.#timers) clearTimeout(timer)
    this.#timers.clear()
  }

  #job (batchId: number): ImportJob {
    const job = this.#jobs.get(batchId)
    if (job === undefined) throw restErrors.objectNotFound(`Import batch '${batchId}'`)
    return job
  }

  /** Queued and Importing jobs, in submission (FIFO) order. */
  #waiting (): ImportJob[] {
    return [...this.#jobs.values()].filter((job) => job.status === 'Queued' || job.status === 'Importing')
  }

  #startWaitingJobs (): void {
    const waiting = this.#waiting()
    let running = waiting.filter((job) => job.status === 'Importing').length
    for (const job of waiting) {
      if (running >= MAX_RUNNING_IMPORTS) break
      if (job.status !== 'Queued') continue
      job.status = 'Importing'
      job.message = 'Import in progress'
      running++
      if (!this.#held) this.#finishAfterTick(job)
    }
  }

  #finishAfterTick (job: ImportJob): void {
    if (this.#closed) return
    const timer = setTimeout(() => {
      this.#timers.delete(timer)
      if (job.status !== 'Importing') return
      Object.assign(job, importFile(job, this.#deps))
      for (const resolve of this.#settledWaiters.get(job.batchId) ?? []) resolve()
      this.#settledWaiters.delete(job.batchId)
      this.#startWaitingJobs()
    }, this.#tickMs)
    this.#timers.add(timer)
  }
}

type ImportOutcome = Pick<ImportJob, 'status' | 'numOfLeadsProcessed' | 'numOfRowsFailed' | 'numOfRowsWithWarning' | 'message' | 'failures' | 'warnings'>

/** Runs one job's file against the person store: insert or update per row, by the lookup field. */
export function importFile (job: Pick<ImportJob, 'format' | 'lookupField' | 'file' | 'requestId'>, deps: BulkImportDependencies): ImportOutcome {
  const delimiter = BULK_FILE_DELIMITERS[job.format]
  const [header = [], ...rows] = parseDelimitedRows(job.file, delimiter)
  const columns = header.map((name) => name.trim())
  const unknown = columns.find((name) => !deps.fields.has(name))
  if (unknown !== undefined || !columns.includes(job.lookupField)) {
    const missing = unknown ?? job.lookupField
    return { status: 'Failed', numOfLeadsProcessed: 0, numOfRowsFailed: 0, numOfRowsWithWarning: 0, message: `Field '${missing}' not found`, failures: '', warnings: '' }
  }
  // Bulk writes are API writes: the Data Value Changes they log say so, like Sync Leads' (inferred method name).
  const source: ChangeSource = { reason: 'Web service API', source: 'Web service API', apiMethodName: 'importLead', requestId: job.requestId }
  const failures: string[] = []
  const warnings: string[] = []
  let processed = 0
  for (const row of rows) {
    const reasonFor = (reason: string): string => formatDelimitedRow([...row, reason], delimiter)
    if (row.length !== columns.length) {
      failures.push(reasonFor(`Row has ${row.length} values for ${columns.length} columns`))
      continue
    }
    // An empty cell leaves the field as it is; Marketo's import does not blank fields (inferred).
    const values: Record<string, string> = {}
    columns.forEach((name, index) => { if (row[index] !== '') values[name] = row[index]! })
    const lookupValue = values[job.lookupField]
    if (lookupValue === undefined) {
      failures.push(reasonFor(`${job.lookupField} cannot be blank`))
      continue
    }
    const matches = deps.persons.findBy(job.lookupField, lookupValue)
    if (matches.length > 1) {
      failures.push(reasonFor('Multiple leads match the lookup criteria'))
      continue
    }
    const truncated = truncateToFieldLengths(values, deps.fields)
    const writable = Object.fromEntries(Object.entries(values).filter(([name]) => deps.fields.get(name)?.readOnly === false))
    if (matches.length === 1) deps.persons.update(matches[0]!.id, writable, source)
    else deps.persons.create(writable, source)
    processed++
    if (truncated.length > 0) warnings.push(reasonFor(`Value truncated for ${truncated.join(', ')}`))
  }
  const withReason = (reasonColumn: string, lines: string[]): string =>
    lines.length === 0 ? '' : [formatDelimitedRow([...columns, reasonColumn], delimiter), ...lines].join('\n') + '\n'
  return {
    status: 'Complete',
    numOfLeadsProcessed: processed,
    numOfRowsFailed: failures.length,
    numOfRowsWithWarning: warnings.length,
    message: failures.length === 0 ? `Import succeeded, ${processed} records imported` : `Import completed with errors, ${processed} records imported, ${failures.length} failed`,
    failures: withReason(FAILURE_REASON_COLUMN, failures),
    warnings: withReason(WARNING_REASON_COLUMN, warnings)
  }
}

/** Values longer than the field's length are cut to it and the row is imported with a warning (inferred). */
function truncateToFieldLengths (values: Record<string, string>, fields: LeadFieldCatalog): string[] {
  const truncated: string[] = []
  for (const [name, value] of Object.entries(values)) {
    const length = fields.get(name)?.length
    if (length !== undefined && value.length > length) {
      values[name] = value.slice(0, length)
      truncated.push(name)
    }
  }
  return truncated
}
