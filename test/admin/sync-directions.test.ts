import t from 'tap'
import { startLocalRedis } from '../../sandbox/redis-server.ts'
import { createWorkerRedisConnection } from '../../src/queue/connections.ts'
import { CheckpointStore } from '../../src/background-sync/checkpoints.ts'
import { SyncPauses } from '../../src/background-sync/sync-pauses.ts'
import { syncFeedProgressKey } from '../../src/queue/redis-keys.ts'
import { syncDirections } from '../../src/admin/sync-directions.ts'

/**
 * `GET /admin/sync`'s lag is the `mds_sync_lag_seconds` measure, on a real Redis: during a backlog
 * the checkpoint is saved every page, so its `savedAt` is recent while the oldest change not yet
 * applied is as old as the last time the feed caught up.
 */

t.test('a backlog: the cursor saved a moment ago, last caught up an hour ago — the lag is an hour', async (t) => {
  const server = await startLocalRedis()
  t.teardown(async () => { await server.stop() })
  const redis = createWorkerRedisConnection(server.url, 'test-sync-directions')
  t.teardown(() => { redis.disconnect() })
  const prefix = 'mds-directions-test'
  const checkpoints = new CheckpointStore(redis, prefix)

  const now = Date.now()
  // Given: the lead feed part-way through a backlog (its checkpoint just saved), caught up last an hour ago.
  await checkpoints.save({ direction: 'dynamics-to-marketo', table: 'lead' }, 0, 'https://org.example/api/data/v9.2/leads?$skiptoken=abc')
  await redis.hset(syncFeedProgressKey(prefix, 'dynamics-to-marketo', 'lead'), { firstReadAt: String(now - 7_200_000), caughtUpAt: String(now - 3_600_000) })
  // A feed read for the first time ten minutes ago and never caught up yet.
  await redis.hset(syncFeedProgressKey(prefix, 'marketo-to-dynamics', 'person'), { firstReadAt: String(now - 600_000) })

  const directions = await syncDirections({ checkpoints, pauses: new SyncPauses(redis, prefix), queues: new Map(), redis, keyPrefix: prefix, now: () => new Date(now) })
  const feed = (direction: string, name: string) => directions.find((entry) => entry.direction === direction)?.feeds.find((entry) => entry.feed === name)

  t.equal(feed('dynamics-to-marketo', 'lead')?.cursor.kind, 'next-link')
  t.equal(feed('dynamics-to-marketo', 'lead')?.lagSeconds, 3600, 'measured from the last caught-up pass, not the fresh checkpoint')
  t.equal(feed('marketo-to-dynamics', 'person')?.lagSeconds, 600, 'never caught up: measured from the first read')
  t.equal(feed('dynamics-to-marketo', 'contact')?.lagSeconds, undefined, 'never read: no lag')
})
