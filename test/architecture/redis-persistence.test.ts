import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { load as loadYaml } from 'js-yaml'
import { test } from 'tap'
import { SHIPPED_REDIS_PERSISTENCE, startLocalRedis } from '../../sandbox/redis-server.ts'

/**
 * What the README promises about a crash of Redis holds only for the persistence settings the
 * fault tests prove it with (test/faults/redis-crash.test.ts, redis-restart.test.ts). So the
 * settings docker-compose.yml ships and the ones the tests' Redis really runs with (asked of the
 * running server, not read from our own constant) must be the same; change one, change both.
 */

const PERSISTENCE_SETTINGS = ['appendonly', 'appendfsync', 'maxmemory-policy'] as const

/** `["redis-server", "--name", "value", …]` → `{ name: value }` (redis-server's command-line form). */
function redisServerFlags (command: readonly string[]): Record<string, string> {
  const flags: Record<string, string> = {}
  for (let index = 1; index < command.length; index += 1) {
    const name = command[index] ?? ''
    if (!name.startsWith('--')) continue
    flags[name.slice(2)] = command[index + 1] ?? ''
  }
  return flags
}

async function shippedCommand (): Promise<string[]> {
  const compose = loadYaml(await readFile(new URL('../../docker-compose.yml', import.meta.url), 'utf8')) as {
    services?: { redis?: { command?: unknown } }
  }
  const command = compose.services?.redis?.command
  if (!Array.isArray(command) || !command.every((part) => typeof part === 'string')) {
    throw new Error('docker-compose.yml: services.redis.command is not a list of strings')
  }
  return command
}

test('docker-compose.yml runs Redis with the persistence settings the tests run with', async (t) => {
  const command = await shippedCommand()
  t.equal(command[0], 'redis-server', 'compose starts redis-server itself')
  const shipped = redisServerFlags(command)

  const aofDir = await mkdtemp(join(tmpdir(), 'mds-redis-settings-'))
  const redis = await startLocalRedis({ appendOnlyDir: aofDir })
  const client = new Redis(redis.url, { lazyConnect: true })
  t.teardown(async () => {
    client.disconnect()
    await redis.stop()
    await rm(aofDir, { recursive: true, force: true })
  })
  await client.connect()

  for (const name of PERSISTENCE_SETTINGS) {
    const [, running] = await client.config('GET', name) as [string, string]
    t.equal(shipped[name], running, `${name}: compose ships "${shipped[name]}", the tests' Redis runs "${running}"`)
    t.equal(SHIPPED_REDIS_PERSISTENCE[name], running, `${name}: sandbox/redis-server.ts names what it runs`)
  }
})

test("the README's Redis persistence paragraph states the appendfsync setting compose ships", async (t) => {
  const shipped = redisServerFlags(await shippedCommand())
  const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8')
  const paragraph = /\*\*Redis persistence\.\*\*[\s\S]*?(?=\n- |\n#|$)/.exec(readme)?.[0] ?? ''
  t.not(paragraph, '', 'the README has a "Redis persistence" paragraph')
  t.match(paragraph, `--appendfsync ${shipped.appendfsync}`, 'it names the appendfsync setting compose ships')
  t.match(paragraph, 'test/faults/redis-crash.test.ts', 'and the test that proves what a crash loses under it')
})

test('redisServerFlags reads a redis-server command line', async (t) => {
  t.same(redisServerFlags(['redis-server', '--appendonly', 'yes', '--save', '', '--maxmemory-policy', 'noeviction']),
    { appendonly: 'yes', save: '', 'maxmemory-policy': 'noeviction' })
})
