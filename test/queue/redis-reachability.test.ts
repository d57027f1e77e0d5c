import { test } from 'tap'
import { once } from 'node:events'
import { Writable } from 'node:stream'
import pino from 'pino'
import { startLocalRedis } from '../../sandbox/redis-server.ts'
import { createWorkerRedisConnection } from '../../src/queue/connections.ts'
import { redisAddress, RedisReachability } from '../../src/queue/redis-reachability.ts'
import { isRedisConnectionError } from '../../src/queue/redis-error-kind.ts'
import { eventually } from '../helpers/flow-step-harness.ts'

test('the address of a Redis URL is host:port, never its credentials', async (t) => {
  t.equal(redisAddress('redis://default:s3cret@redis.internal:6380/2'), 'redis.internal:6380')
  t.equal(redisAddress('rediss://:s3cret@cache.example.net'), 'cache.example.net:6379', 'the default port when none is given')
  t.equal(redisAddress('redis://127.0.0.1:6379'), '127.0.0.1:6379')
})

test('only socket-level failures count as Redis being unreachable', async (t) => {
  const socketError = (code: string) => Object.assign(new Error(`connect ${code} 10.0.0.1:6379`), { code })
  for (const code of ['ECONNREFUSED', 'ETIMEDOUT', 'ENOTFOUND', 'EHOSTUNREACH', 'ECONNRESET']) t.ok(isRedisConnectionError(socketError(code)), code)
  t.ok(isRedisConnectionError(new Error('Connection is closed.')), 'a command lost with its connection')
  t.notOk(isRedisConnectionError(new Error('WRONGPASS invalid username-password pair or user is disabled.')), 'a refused password is not an outage')
  t.notOk(isRedisConnectionError(new Error("OOM command not allowed when used memory > 'maxmemory'.")), 'nor a refused command')
  t.notOk(isRedisConnectionError('ECONNREFUSED'), 'nor something that is not an error')
})

test('a Redis outage is logged once when it starts and once when it ends, however many reconnects fail in between', async (t) => {
  let redis = await startLocalRedis()
  const port = redis.port
  t.teardown(async () => { await redis.stop() })
  const lines: Array<{ level: number, msg: string, redis?: string }> = []
  const logger = pino({ level: 'debug' }, new Writable({
    write (chunk: Buffer, _encoding, done) { lines.push(JSON.parse(chunk.toString()) as typeof lines[number]); done() }
  }))
  const reachability = new RedisReachability({ url: redis.url, logger })
  // Two connections, as every process has several: an outage is still one line.
  const connections = [createWorkerRedisConnection(redis.url, 'first'), createWorkerRedisConnection(redis.url, 'second')].map((c) => reachability.watch(c))
  t.teardown(() => { for (const connection of connections) connection.disconnect() })
  await Promise.all(connections.map(async (c) => { if (c.status !== 'ready') await once(c, 'ready') }))
  let failedReconnects = 0
  for (const connection of connections) connection.on('error', () => { failedReconnects++ })
  const said = (text: string) => lines.filter((line) => line.msg.includes(text))

  const firstFailure = once(connections[0]!, 'error')
  await redis.stop()
  await firstFailure
  t.equal(said('redis cannot be reached').length, 1, 'said at the first failed reconnect, not after some retries')
  await eventually(() => failedReconnects >= 6 ? true : undefined, { what: 'several failed reconnects' })
  t.equal(said('redis cannot be reached').length, 1, `one line for ${failedReconnects} failed reconnects of two connections`)
  t.equal(said('redis cannot be reached')[0]?.msg.includes(`127.0.0.1:${port}`), true, 'naming the address')
  t.equal(said('redis cannot be reached')[0]?.level, 50, 'at error level')
  t.equal(reachability.reachable, false)

  redis = await startLocalRedis({ port })
  await eventually(() => said('redis reachable again').length > 0 ? true : undefined, { what: 'the recovery line' })
  await Promise.all(connections.map(async (c) => { if (c.status !== 'ready') await once(c, 'ready') }))
  t.equal(said('redis reachable again').length, 1, 'the end of the outage is one line too')
  t.equal(reachability.reachable, true)
  t.equal(await connections[0]!.ping(), 'PONG', 'the connections rode the restart out')

  const before = failedReconnects
  await redis.stop()
  await eventually(() => failedReconnects >= before + 2 ? true : undefined, { what: 'failed reconnects in the second outage' })
  t.equal(said('redis cannot be reached').length, 2, 'a second outage is a second line')
})
