import t from 'tap'
import pino from 'pino'
import { startBackgroundSyncHarness } from '../helpers/background-sync-harness.ts'
import { parkedChangeRetryDeps } from '../../src/background-sync/parked-change-retry-deps.ts'
import { createDataverseClient, createMarketoRestClient } from '../../src/runtime/service-clients.ts'

/**
 * The retry deps the admin API builds for each direction (parked-change-retry-deps.ts), against the
 * emulated Dataverse over real HTTP: what Dataverse says about itself (option sets, state and status
 * pairs, the sync filter's tables, the service's user) is read on the first retry that needs it and
 * kept for the process; a read that failed is not kept, and the next retry asks again.
 */

const harness = await startBackgroundSyncHarness(t)
const { sandbox, config, redis } = harness
const logger = pino({ level: 'silent' })
const dataverse = sandbox.dataverse

function builder (): ReturnType<typeof parkedChangeRetryDeps> {
  return parkedChangeRetryDeps({ config, logger, redis, dataverse: createDataverseClient(config, logger), marketo: createMarketoRestClient(config) })
}

t.test('Dynamics → Marketo: the sync filter\'s tables and the service\'s user, asked again after a failure, then kept', async (t) => {
  const deps = builder()
  // A 400 is not retried by the client: the first build fails on it.
  dataverse.faults.failNext(1, 400)
  await t.rejects(deps.dynamicsToMarketo(), 'a failed read fails the retry')
  const built = await deps.dynamicsToMarketo()
  t.match(built.serviceUserId, /^[0-9a-f-]{36}$/, 'WhoAmI\'s user')
  t.same([...built.syncFilterTables].sort(), ['contact', 'lead'], 'the sandbox\'s tables with new_synctomkto')
  const requests = dataverse.requestCount()
  await deps.dynamicsToMarketo()
  t.equal(dataverse.requestCount(), requests, 'read once: no Dataverse request for the next retry')
})

t.test('Marketo → Dynamics: option sets and how states and statuses pair, asked again after a failure, then kept', async (t) => {
  const deps = builder()
  dataverse.faults.failNext(1, 400)
  await t.rejects(deps.marketoToDynamics(), 'a failed read fails the retry')
  const built = await deps.marketoToDynamics()
  t.ok(built.optionSets?.lead?.leadsourcecode !== undefined, 'the lead\'s option sets')
  t.match(built.stateStatus?.lead, { states: [{ value: 0, defaultStatus: 1 }, { value: 1, defaultStatus: 3 }, { value: 2, defaultStatus: 4 }] }, 'the lead\'s states with their default statuses')
  t.ok((built.stateStatus?.contact?.statuses.length ?? 0) > 0, 'the contact\'s statuses')
  const requests = dataverse.requestCount()
  await deps.marketoToDynamics()
  t.equal(dataverse.requestCount(), requests, 'read once: no Dataverse request for the next retry')
})
