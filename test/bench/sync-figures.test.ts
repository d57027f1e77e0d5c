import t from 'tap'
import { callsPerDay, firstSyncBound, idleCostIndependent, idlePollIntervalForBudgetMs } from '../../bench/lib/sync-figures.ts'

t.test('a 2-minute idle window of 24 calls is 17,280 calls a day', async (t) => {
  t.equal(callsPerDay(24, 120_000), 17_280)
  t.equal(callsPerDay(0, 120_000), 0)
  t.throws(() => callsPerDay(1, 0), RangeError)
})

t.test('the default budget of 5,000 calls a day allows one idle poll every 17.3 s', async (t) => {
  t.equal(idlePollIntervalForBudgetMs(5_000), 17_280)
  t.equal(idlePollIntervalForBudgetMs(5_000, 2), 34_560, 'two calls a poll halve the polls')
  t.throws(() => idlePollIntervalForBudgetMs(0), RangeError)
})

t.test('idle cost is independent of the linked count when the two rates agree within a poll or a tenth', async (t) => {
  const small = { calls: 24, callsPerDay: 17_280 }
  t.ok(idleCostIndependent(small, { calls: 25, callsPerDay: 18_000 }), 'one poll more is window jitter')
  t.notOk(idleCostIndependent(small, { calls: 48, callsPerDay: 34_560 }), 'twice the calls is not')
})

t.test('Marketo\'s limits bound a first sync at 1,500 records/s, half that with a look-up call per batch', async (t) => {
  const limits = { recordsPerCall: 300, callsPerWindow: 100, windowMs: 20_000, dailyCalls: 5_000 }
  t.same(firstSyncBound(limits), { recordsPerSecond: 1_500, recordsPerDay: 1_500_000 })
  t.same(firstSyncBound(limits, 2), { recordsPerSecond: 750, recordsPerDay: 750_000 })
})
