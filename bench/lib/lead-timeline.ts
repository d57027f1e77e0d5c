import type { Sandbox } from '../../sandbox/start-sandbox.ts'
import type { InstalledService } from '../../sandbox/marketo/index.ts'

/**
 * Drives trigger or batch campaigns through the emulated Marketo (so the invocation, its one-time
 * token and the callback are what Marketo would see) and times, per person: the invocation sent,
 * the lead stored in the Dataverse emulator (its insert hook: from that instant a query finds it),
 * and Marketo's callback accepted.
 */
export interface PersonTimes {
  readonly sentAt: number
  leadAt?: number
  callbackAt?: number
}

export class LeadTimeline {
  readonly #sandbox: Sandbox
  readonly #service: InstalledService
  readonly #byEmail = new Map<string, PersonTimes>()
  readonly #unsubscribe: () => void
  readonly #tag = Math.random().toString(36).slice(2, 8)
  #sequence = 0
  refused = 0
  leadsCreated = 0

  constructor (sandbox: Sandbox, service: InstalledService) {
    this.#sandbox = sandbox
    this.#service = service
    this.#unsubscribe = sandbox.dataverse.store.onInsert((entitySet, row) => {
      if (entitySet !== 'leads') return
      const times = this.#byEmail.get(String(row.emailaddress1 ?? '').toLowerCase())
      if (times === undefined || times.leadAt !== undefined) return
      times.leadAt = performance.now()
      this.leadsCreated++
    })
  }

  /** New Marketo persons (emails never used before), ready to be sent. */
  createPersons (count: number): Array<{ id: number, email: string }> {
    const persons = []
    for (let i = 0; i < count; i++) {
      const n = ++this.#sequence
      const email = `lead${n}.${this.#tag}@bench.example.com`
      const id = this.#sandbox.marketo.persons.create({ email, firstName: 'Bench', lastName: `Lead ${n}`, company: `Bench ${this.#tag}`, title: 'Tester' })
      persons.push({ id, email })
    }
    return persons
  }

  /**
   * One invocation for these persons (one person: a trigger campaign; more: a batch campaign).
   * Resolves once the service answered, with a promise of the callback's arrival.
   */
  async invoke (persons: ReadonlyArray<{ id: number, email: string }>): Promise<{ callback: Promise<void> }> {
    const sentAt = performance.now()
    const all = persons.map((person) => {
      const times: PersonTimes = { sentAt }
      this.#byEmail.set(person.email, times)
      return times
    })
    const run = await this.#sandbox.marketo.runCampaign(this.#service, {
      personIds: persons.map((person) => person.id),
      kind: persons.length === 1 ? 'trigger' : 'batch',
      flowStepContext: { syncAs: 'Lead' }
    })
    const invocation = run.invocations[0]
    if (invocation === undefined || invocation.status !== 201) {
      this.refused++
      return { callback: Promise.resolve() }
    }
    const callback = this.#sandbox.marketo.waitForCallback(invocation.token, { timeoutMs: 600_000 }).then(() => {
      const at = performance.now()
      for (const times of all) times.callbackAt = at
    }, () => undefined)
    return { callback }
  }

  /** Stop timing these persons (long runs keep the map small). */
  forget (persons: ReadonlyArray<{ email: string }>): void {
    for (const person of persons) this.#byEmail.delete(person.email)
  }

  times (): PersonTimes[] {
    return [...this.#byEmail.values()]
  }

  /** Forget timed persons (between phases); the insert hook stays. */
  reset (): void {
    this.#byEmail.clear()
    this.refused = 0
    this.leadsCreated = 0
  }

  close (): void {
    this.#unsubscribe()
  }
}

/** Calls `send(i)` at `rate` per second for `seconds`, on schedule (late ticks catch up). */
export async function atRate (rate: number, seconds: number, send: (i: number) => void): Promise<void> {
  const total = Math.round(rate * seconds)
  const start = performance.now()
  let sent = 0
  await new Promise<void>((resolve) => {
    const tick = () => {
      const due = Math.min(total, Math.floor((performance.now() - start) * rate / 1000) + 1)
      while (sent < due) send(sent++)
      if (sent < total) setTimeout(tick, 2)
      else resolve()
    }
    tick()
  })
}
