import t from 'tap'
import { ConcurrencyLimit } from '../../src/dynamics/concurrency-limit.ts'

t.test('never more than max tasks in flight, all of them run, in arrival order', async (t) => {
  const limit = new ConcurrencyLimit(3)
  let active = 0
  let peak = 0
  const started: number[] = []
  const gates: Array<() => void> = []
  const tasks = Array.from({ length: 10 }, async (_, i) => await limit.run(async () => {
    started.push(i)
    active++
    peak = Math.max(peak, active)
    await new Promise<void>((resolve) => gates.push(resolve))
    active--
    return i
  }))
  // Release the gates one by one as tasks arrive at them.
  while (started.length < 10 || gates.length > 0) {
    await new Promise((resolve) => setImmediate(resolve))
    gates.shift()?.()
  }
  t.same(await Promise.all(tasks), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
  t.equal(peak, 3)
  t.same(started, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
})

t.test('a failing task frees its slot', async (t) => {
  const limit = new ConcurrencyLimit(1)
  await t.rejects(limit.run(async () => { throw new Error('boom') }), /boom/)
  t.equal(await limit.run(async () => 'next'), 'next')
})

t.test('the limit must be a positive integer', async (t) => {
  t.throws(() => new ConcurrencyLimit(0), RangeError)
})
