import t from 'tap'
import pino from 'pino'
import { startFlowStepHarness } from '../helpers/flow-step-harness.ts'
import { buildApiRuntime } from '../../src/runtime/api-runtime.ts'
import { sumSamples } from '../helpers/ops-endpoints.ts'

/**
 * The API's admin calls Marketo (explain, resync, parked retries): those calls count in the API's
 * `mds_outside_calls_total` as a worker's do, so a dashboard summing the processes sees them.
 * The API runtime `npm start` builds, against the Marketo emulator and a real Redis.
 */

const ADMIN_KEY = 'admin-key-of-the-outside-calls-test'
const harness = await startFlowStepHarness(t, { withWorker: false, env: { ADMIN_API_KEY: ADMIN_KEY } })

t.test('an explain from the admin API counts its Marketo call in the API\'s metrics', async (t) => {
  const runtime = await buildApiRuntime(harness.config, pino({ level: 'silent' }))
  t.teardown(async () => { await runtime.app.close() })
  const marketoCalls = async () => sumSamples((await runtime.ops.inject({ url: '/metrics' })).body, 'mds_outside_calls_total', ['service="marketo"']) ?? 0
  const before = await marketoCalls()

  const explained = await runtime.app.inject({ url: '/admin/explain/person/4242', headers: { authorization: `Bearer ${ADMIN_KEY}` } })
  t.equal(explained.statusCode, 404, 'Marketo was asked and has no such person')
  t.match(explained.json(), { code: 'PERSON_NOT_FOUND' })

  t.ok(await marketoCalls() > before, 'the explain\'s Get Leads call was counted')
})
