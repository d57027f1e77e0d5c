import t from 'tap'
import { buildFlowCallbackBody } from '../../src/flow-step/callback-body.ts'

t.test('each outcome becomes one callback item with the reserved activity attributes', async (t) => {
  const body = buildFlowCallbackBody('123-ABC-456', [
    { marketoId: 1, kind: 'created', recordType: 'Lead', recordId: 'L1' },
    { marketoId: 2, kind: 'existed', recordType: 'Contact', recordId: 'C2' },
    { marketoId: 3, kind: 'failed', errorCode: 'DYNAMICS_0x80044331', reason: 'too long' }
  ])
  t.equal(body.munchkinId, '123-ABC-456')
  t.same(body.objectData[0], {
    leadData: { id: 1, microsoftRecordId: 'L1', microsoftType: 'Lead' },
    activityData: { success: true, outcome: 'created', dynamicsRecordId: 'L1', dynamicsRecordType: 'Lead' }
  })
  t.match(body.objectData[1], { leadData: { id: 2, microsoftType: 'Contact' }, activityData: { success: true, outcome: 'existed', reason: /already exists/ } })
  t.same(body.objectData[2], { leadData: { id: 3 }, activityData: { success: false, outcome: 'failed', errorCode: 'DYNAMICS_0x80044331', reason: 'too long' } })
})
