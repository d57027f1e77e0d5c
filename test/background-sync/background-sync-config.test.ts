import t from 'tap'
import { loadConfig } from '../../src/config.ts'
import { ConfigError } from '../../src/errors.ts'
import { REQUIRED_ENVIRONMENT } from '../helpers/valid-environment.ts'

/** BACKGROUND_SYNC: off unless asked, so a deployment that sets nothing runs the flow step only. */

t.test('the background sync is off by default and polls every 2 s once on', async (t) => {
  t.match(loadConfig({ ...REQUIRED_ENVIRONMENT }).sync, { enabled: false, dynamicsPollIntervalMs: 2_000 })
  t.match(loadConfig({ ...REQUIRED_ENVIRONMENT, BACKGROUND_SYNC: 'on', SYNC_DYNAMICS_POLL_INTERVAL_MS: '500' }).sync, { enabled: true, dynamicsPollIntervalMs: 500 })
  t.equal(loadConfig({ ...REQUIRED_ENVIRONMENT, BACKGROUND_SYNC: 'off' }).sync.enabled, false)
})

t.test('a value other than on or off is refused, not read as off', async (t) => {
  t.throws(() => loadConfig({ ...REQUIRED_ENVIRONMENT, BACKGROUND_SYNC: 'yes' }), { name: 'ConfigError', message: /BACKGROUND_SYNC must be on or off/ })
  t.throws(() => loadConfig({ ...REQUIRED_ENVIRONMENT, SYNC_DYNAMICS_POLL_INTERVAL_MS: '10' }), ConfigError)
})

t.test('a Dynamics change read pages at Dataverse\'s own size unless SYNC_DYNAMICS_PAGE_SIZE says, from 1 to 5,000', async (t) => {
  t.equal(loadConfig({ ...REQUIRED_ENVIRONMENT }).sync.dynamicsPageSize, undefined)
  t.equal(loadConfig({ ...REQUIRED_ENVIRONMENT, SYNC_DYNAMICS_PAGE_SIZE: '25' }).sync.dynamicsPageSize, 25)
  t.throws(() => loadConfig({ ...REQUIRED_ENVIRONMENT, SYNC_DYNAMICS_PAGE_SIZE: '0' }), { name: 'ConfigError', message: /SYNC_DYNAMICS_PAGE_SIZE must be an integer from 1 to 5000/ })
  t.throws(() => loadConfig({ ...REQUIRED_ENVIRONMENT, SYNC_DYNAMICS_PAGE_SIZE: '5001' }), ConfigError)
})

t.test('the Marketo poll: SYNC_MARKETO_POLL_INTERVAL_MS stays the fastest pace (5 s), the slowest chosen at idle is 5 min', async (t) => {
  t.match(loadConfig({ ...REQUIRED_ENVIRONMENT }).sync, { marketoPollIntervalMs: 5_000, marketoPollMaxIntervalMs: 300_000 })
  t.match(loadConfig({ ...REQUIRED_ENVIRONMENT, SYNC_MARKETO_POLL_INTERVAL_MS: '1000', SYNC_MARKETO_POLL_MAX_INTERVAL_MS: '60000' }).sync, { marketoPollIntervalMs: 1_000, marketoPollMaxIntervalMs: 60_000 })
  t.equal(loadConfig({ ...REQUIRED_ENVIRONMENT, SYNC_MARKETO_POLL_INTERVAL_MS: '2000', SYNC_MARKETO_POLL_MAX_INTERVAL_MS: '2000' }).sync.marketoPollMaxIntervalMs, 2_000, 'one pace: floor and ceiling equal')
})

t.test('a slowest pace below the fastest is refused, naming both variables', async (t) => {
  t.throws(() => loadConfig({ ...REQUIRED_ENVIRONMENT, SYNC_MARKETO_POLL_MAX_INTERVAL_MS: '4000' }), { name: 'ConfigError', message: /SYNC_MARKETO_POLL_MAX_INTERVAL_MS \(4000\) must not be below SYNC_MARKETO_POLL_INTERVAL_MS \(5000\)/ })
  t.throws(() => loadConfig({ ...REQUIRED_ENVIRONMENT, SYNC_MARKETO_POLL_MAX_INTERVAL_MS: 'soon' }), { name: 'ConfigError', message: /SYNC_MARKETO_POLL_MAX_INTERVAL_MS must be an integer/ })
})

t.test('a modifiedon table\'s linked records are swept for deletes once a day unless SYNC_DELETED_RECORD_SWEEP_INTERVAL_MS says, from 1 s to 30 days', async (t) => {
  t.equal(loadConfig({ ...REQUIRED_ENVIRONMENT }).sync.deletedRecordSweepIntervalMs, 86_400_000)
  t.equal(loadConfig({ ...REQUIRED_ENVIRONMENT, SYNC_DELETED_RECORD_SWEEP_INTERVAL_MS: '3600000' }).sync.deletedRecordSweepIntervalMs, 3_600_000)
  t.throws(() => loadConfig({ ...REQUIRED_ENVIRONMENT, SYNC_DELETED_RECORD_SWEEP_INTERVAL_MS: '999' }), { name: 'ConfigError', message: /SYNC_DELETED_RECORD_SWEEP_INTERVAL_MS must be an integer from 1000 to 2592000000/ })
  t.throws(() => loadConfig({ ...REQUIRED_ENVIRONMENT, SYNC_DELETED_RECORD_SWEEP_INTERVAL_MS: 'daily' }), ConfigError)
})
