import t from 'tap'
import { decideSweep, isExpiredDeltaReset, type SweepState } from '../../src/background-sync/deleted-record-sweep.ts'
import type { DynamicsChangePassOutcome } from '../../src/background-sync/dynamics-change-pass.ts'

/** When a table's linked records are swept for deletes change tracking cannot show (issue 12 §1, §7): a pure decision. */

const DAY = 86_400_000
const NOW = 10 * DAY
const quiet: SweepState = { awaitingFullRead: false, running: undefined, lastStartedAt: undefined }
const caughtUp: DynamicsChangePassOutcome = { kind: 'advanced', version: 7, caughtUp: true, upserted: 0, deleted: 0 }
const midRead: DynamicsChangePassOutcome = { kind: 'advanced', version: 7, caughtUp: false, upserted: 20, deleted: 0 }
const expired: DynamicsChangePassOutcome = { kind: 'reset', reason: 'delta-token-expired', version: 7 }
const decide = (state: Partial<SweepState>, lastOutcome: DynamicsChangePassOutcome | undefined, watermarkMode = false, now = NOW) =>
  decideSweep({ state: { ...quiet, ...state }, lastOutcome, watermarkMode, now, intervalMs: DAY })

t.test('a tracked table whose delta link never expired is never swept, however often it is caught up', async (t) => {
  t.same(decide({}, caughtUp), { kind: 'idle' })
  t.same(decide({ lastStartedAt: 0 }, caughtUp), { kind: 'idle' }, 'no period for a tracked table')
})

t.test('after an expired delta link, the sweep starts once the full read has caught up, not before', async (t) => {
  t.same(decide({ awaitingFullRead: true }, midRead), { kind: 'idle' }, 'a job ended mid-read')
  t.same(decide({ awaitingFullRead: true }, expired), { kind: 'idle' }, 'the drop itself')
  t.same(decide({ awaitingFullRead: true }, { kind: 'skipped', reason: 'another pass is running' }), { kind: 'idle' })
  t.same(decide({ awaitingFullRead: true }, caughtUp), { kind: 'start', reason: 'delta-token-expired' })
})

t.test('a sweep under way goes on at every job, whatever the pass did, and another is not started meanwhile', async (t) => {
  const running = { reason: 'watermark-period', scanCursor: '384' } as const
  t.same(decide({ running }, midRead), { kind: 'continue' })
  t.same(decide({ running, awaitingFullRead: true }, caughtUp), { kind: 'continue' }, 'the expired link waits for this one to end')
  t.same(decide({ running }, undefined, true), { kind: 'continue' })
})

t.test('a modifiedon table is swept at once the first time, then once per interval', async (t) => {
  t.same(decide({}, caughtUp, true), { kind: 'start', reason: 'watermark-period' })
  t.same(decide({ lastStartedAt: NOW - DAY + 1 }, caughtUp, true), { kind: 'idle' }, 'a moment before the interval')
  t.same(decide({ lastStartedAt: NOW - DAY }, midRead, true), { kind: 'start', reason: 'watermark-period' }, 'due whatever the pass read')
})

t.test('only the drop of an expired delta link awaits a full read', async (t) => {
  t.ok(isExpiredDeltaReset(expired))
  t.notOk(isExpiredDeltaReset({ kind: 'reset', reason: 'columns-changed', version: 1 }))
  t.notOk(isExpiredDeltaReset({ kind: 'reset', reason: 'change-tracking-off', version: 1 }))
  t.notOk(isExpiredDeltaReset(caughtUp))
})
