/**
 * Makes the callback endpoint refuse deliveries — before authenticating or recording anything —
 * so the service's callback retry can be tested. Whether real Marketo ever refuses a callback
 * transiently is undocumented (reference §1.7); 503 is what a gateway outage looks like.
 */
export class CallbackFaults {
  readonly #now: () => Date
  readonly #queued: number[] = []
  #window: { untilMs: number, status: number } | undefined

  constructor (now: () => Date) {
    this.#now = now
  }

  /** The next `count` callback attempts answer `status`. */
  failNext (count: number, status = 503): void {
    for (let i = 0; i < count; i++) this.#queued.push(status)
  }

  /** Every callback attempt in the next `ms` milliseconds (emulator clock) answers `status`. */
  failFor (ms: number, status = 503): void {
    this.#window = { untilMs: this.#now().getTime() + ms, status }
  }

  reset (): void {
    this.#queued.length = 0
    this.#window = undefined
  }

  /** The status this attempt must be refused with, if any. */
  takeRefusal (): number | undefined {
    const queued = this.#queued.shift()
    if (queued !== undefined) return queued
    if (this.#window !== undefined && this.#now().getTime() < this.#window.untilMs) return this.#window.status
    return undefined
  }
}
