/**
 * Marketo's per-service statistics log: invocation and callback results "grouped by time, level
 * (chunk or record), and code" (reference §1.1 item 8). Kept as a flat list; tests and the
 * launcher filter it.
 */

export interface ServiceLogEntry {
  readonly at: string
  /** `invocation`: the service answered /submitAsyncAction with something other than 201. */
  readonly level: 'invocation' | 'chunk' | 'record'
  readonly code: string
  readonly message: string
  readonly token: string
  readonly leadId?: number
}

export class ServiceLog {
  readonly #entries: ServiceLogEntry[] = []

  record (entry: ServiceLogEntry): void {
    this.#entries.push(entry)
  }

  entries (): ServiceLogEntry[] {
    return [...this.#entries]
  }
}
