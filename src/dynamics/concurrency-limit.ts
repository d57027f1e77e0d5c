/**
 * At most `max` tasks in flight; the rest wait in arrival order. Dataverse limits concurrent
 * requests per user, so one limit per client (per process) keeps the worker inside it.
 */
export class ConcurrencyLimit {
  #active = 0
  readonly #waiting: Array<() => void> = []

  constructor (private readonly max: number) {
    if (!Number.isInteger(max) || max < 1) throw new RangeError('max must be a positive integer')
  }

  async run<T> (task: () => Promise<T>): Promise<T> {
    if (this.#active >= this.max) {
      await new Promise<void>((resolve) => this.#waiting.push(resolve))
    } else {
      this.#active++
    }
    try {
      return await task()
    } finally {
      const next = this.#waiting.shift()
      // Hand the slot straight to the next waiter so a newcomer cannot overtake it.
      if (next === undefined) this.#active--
      else next()
    }
  }
}
