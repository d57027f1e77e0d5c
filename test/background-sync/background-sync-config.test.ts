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
