import t from 'tap'
import { Cluster } from 'ioredis'
import { MarketoCallBudget } from '../../src/marketo/marketo-call-budget.ts'
import { MarketoBudgetSpentError } from '../../src/marketo/marketo-errors.ts'
import { startLocalRedisCluster } from '../helpers/redis-cluster.ts'

/**
 * The call budget on a Redis Cluster of three masters: its scripts take several keys, which a
 * cluster refuses (CROSSSLOT) unless they share a hash slot.
 */

const cluster = await startLocalRedisCluster()
const connection = new Cluster([{ host: '127.0.0.1', port: cluster.ports[0]! }])
t.teardown(async () => {
  connection.disconnect()
  await cluster.stop()
})

t.test('acquiring, releasing and the daily budget all run on a cluster', async (t) => {
  const budget = new MarketoCallBudget(connection, { keyPrefix: 'mds', dailyBudget: 2, maxConcurrent: 1 })
  await (await budget.acquire()).release()
  await (await budget.acquire()).release()
  t.equal(await budget.remainingToday(), 0)
  await t.rejects(budget.acquire(), MarketoBudgetSpentError)
  await budget.markSpentUntilReset()
  t.equal(await budget.remainingToday(), 0)
})
