import t from 'tap'
import pino from 'pino'
import { Cluster } from 'ioredis'
import { startDataverseEmulator } from '../../sandbox/dataverse/index.ts'
import { CheckpointStore } from '../../src/background-sync/checkpoints.ts'
import { DeletedRecordSweep } from '../../src/background-sync/deleted-record-sweep.ts'
import { FeedLeases } from '../../src/background-sync/feed-lease.ts'
import { RecordLinkStore } from '../../src/links/record-link-store.ts'
import { dataverseTestClient } from '../helpers/dataverse-test-client.ts'
import { startLocalRedisCluster } from '../helpers/redis-cluster.ts'

/**
 * The sweep's walk of the record links on a Redis Cluster of three masters: a cluster's SCAN is one
 * node's, and the links all live on the master holding the {links} slot, which the sweep finds.
 */

const cluster = await startLocalRedisCluster()
const connection = new Cluster([{ host: '127.0.0.1', port: cluster.ports[0]! }])
const emulator = await startDataverseEmulator({})
t.teardown(async () => {
  connection.disconnect()
  await emulator.close()
  await cluster.stop()
})

t.test('on a cluster every linked lead is looked up once and the deleted ones are found', async (t) => {
  const links = new RecordLinkStore(connection, 'mds')
  const ids: string[] = []
  for (let n = 0; n < 40; n++) {
    const id = emulator.store.insert('leads', { lastname: `Lead ${n}` })
    await links.set(100 + n, { type: 'Lead', id })
    ids.push(id)
  }
  for (const id of ids.slice(0, 3)) emulator.store.delete('leads', id)
  const sweep = new DeletedRecordSweep({
    redis: connection,
    prefix: 'mds',
    dataverse: dataverseTestClient(emulator.url),
    checkpoints: new CheckpointStore(connection, 'mds'),
    leases: new FeedLeases(connection, 'mds', { ttlMs: 30_000 }),
    intervalMs: 60_000,
    logger: pino({ level: 'silent' }),
    linksPerStep: 15,
    scanCount: 10
  })
  const delivered: string[] = []
  await sweep.awaitFullRead('lead')
  let checked = 0
  for (let step = 0; step < 50; step++) {
    const outcome = await sweep.afterPasses('lead', { kind: 'advanced', version: 1, caughtUp: true, upserted: 0, deleted: 0 }, async (_table, deletedIds) => {
      delivered.push(...deletedIds)
      return { flaggedDeleted: deletedIds.length }
    })
    checked += outcome?.checked ?? 0
    if (outcome?.done === true) break
  }
  t.equal(checked, 40)
  t.same(delivered.sort(), ids.slice(0, 3).sort())
})
