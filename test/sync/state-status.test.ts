import t from 'tap'
import { pairStateAndStatus, STATE_STATUS_MISMATCH, type StateStatusOptions } from '../../src/sync/state-status.ts'

/**
 * A lead's state and status written as a pair Dataverse accepts: Open (0) has New 1 / Contacted 2,
 * Qualified (1) has Qualified 3, Disqualified (2) has Lost 4 … Canceled 7 (dataverse-web-api-and-msal.md §7).
 */

const lead: StateStatusOptions = {
  states: [{ value: 0, defaultStatus: 1 }, { value: 1, defaultStatus: 3 }, { value: 2, defaultStatus: 4 }],
  statuses: [{ value: 1, state: 0 }, { value: 2, state: 0 }, { value: 3, state: 1 }, { value: 4, state: 2 }, { value: 5, state: 2 }, { value: 6, state: 2 }, { value: 7, state: 2 }]
}
const openContacted = { statecode: 0, statuscode: 2 }

t.test('a write naming neither column is left as it is', async (t) => {
  t.same(pairStateAndStatus({ columns: { jobtitle: 'CTO' }, record: openContacted, options: lead }), { columns: { jobtitle: 'CTO' } })
})

t.test('a new state alone gets that state\'s default status', async (t) => {
  t.same(pairStateAndStatus({ columns: { statecode: 1, jobtitle: 'CTO' }, record: openContacted, options: lead }), { columns: { statecode: 1, jobtitle: 'CTO', statuscode: 3 } })
  t.same(pairStateAndStatus({ columns: { statecode: 2 }, record: openContacted, options: lead }), { columns: { statecode: 2, statuscode: 4 } })
})

t.test('a new state alone whose current status already belongs to it keeps that status', async (t) => {
  // The state changed in Dynamics to Disqualified/Cannot Contact while Marketo still says Open; Marketo's
  // "Disqualified" arrives: the record's own reason belongs to it and stays.
  t.same(pairStateAndStatus({ columns: { statecode: 2 }, record: { statecode: 0, statuscode: 5 }, options: lead }), { columns: { statecode: 2 } })
})

t.test('a new state with the status cleared gets the default status instead of the empty one', async (t) => {
  t.same(pairStateAndStatus({ columns: { statecode: 1, statuscode: null }, record: { statecode: 1, statuscode: 3 }, options: lead }), { columns: { statecode: 1, statuscode: 3 } })
  t.same(pairStateAndStatus({ columns: { statecode: 0, statuscode: null }, record: { statecode: 2, statuscode: 4 }, options: lead }), { columns: { statecode: 0, statuscode: 1 } })
})

t.test('a record not read with its status gets the default status', async (t) => {
  t.same(pairStateAndStatus({ columns: { statecode: 1 }, record: {}, options: lead }), { columns: { statecode: 1, statuscode: 3 } })
})

t.test('a new status alone brings its state along', async (t) => {
  t.same(pairStateAndStatus({ columns: { statuscode: 6 }, record: openContacted, options: lead }), { columns: { statuscode: 6, statecode: 2 } })
  t.same(pairStateAndStatus({ columns: { statuscode: 3 }, record: openContacted, options: lead }), { columns: { statuscode: 3, statecode: 1 } })
})

t.test('a new status alone within the record\'s state is written alone', async (t) => {
  t.same(pairStateAndStatus({ columns: { statuscode: 1 }, record: openContacted, options: lead }), { columns: { statuscode: 1 } })
})

t.test('both, matching: written as they are', async (t) => {
  t.same(pairStateAndStatus({ columns: { statecode: 2, statuscode: 7 }, record: openContacted, options: lead }), { columns: { statecode: 2, statuscode: 7 } })
})

t.test('both, not matching: refused with a named code', async (t) => {
  t.same(pairStateAndStatus({ columns: { statecode: 1, statuscode: 4 }, record: openContacted, options: lead }), { refused: { column: 'statuscode', code: STATE_STATUS_MISMATCH } })
  t.same(pairStateAndStatus({ columns: { statecode: 0, statuscode: 3 }, record: { statecode: 1, statuscode: 3 }, options: lead }), { refused: { column: 'statuscode', code: STATE_STATUS_MISMATCH } })
})

t.test('values the metadata does not know, and a cleared state, are left for Dynamics to answer', async (t) => {
  t.same(pairStateAndStatus({ columns: { statecode: 9 }, record: openContacted, options: lead }), { columns: { statecode: 9 } }, 'an unknown state')
  t.same(pairStateAndStatus({ columns: { statuscode: 99 }, record: openContacted, options: lead }), { columns: { statuscode: 99 } }, 'an unknown status')
  t.same(pairStateAndStatus({ columns: { statecode: 1, statuscode: 99 }, record: openContacted, options: lead }), { columns: { statecode: 1, statuscode: 99 } }, 'an unknown status with a state')
  t.same(pairStateAndStatus({ columns: { statecode: null }, record: openContacted, options: lead }), { columns: { statecode: null } }, 'a cleared state')
  t.same(pairStateAndStatus({ columns: { statuscode: null }, record: openContacted, options: lead }), { columns: { statuscode: null } }, 'a cleared status')
})

t.test('the columns given are not changed in place', async (t) => {
  const columns = { statecode: 1 }
  pairStateAndStatus({ columns, record: openContacted, options: lead })
  t.same(columns, { statecode: 1 })
})
