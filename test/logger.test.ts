import t from 'tap'
import { Writable } from 'node:stream'
import pino from 'pino'
import { Redis } from 'ioredis'
import { loggerOptions } from '../src/logger.ts'
import { startLocalRedis } from '../sandbox/redis-server.ts'

t.test('credentials in request headers and secret-bearing fields are redacted', async (t) => {
  const lines: string[] = []
  const sink = new Writable({ write (chunk: Buffer, _e, done) { lines.push(chunk.toString()); done() } })
  const logger = pino(loggerOptions('info', 'test'), sink)
  logger.info({
    req: { headers: { 'x-api-key': 'k-123', 'x-callback-token': 'cb-456', authorization: 'Bearer tok-789', cookie: 'c=1', 'user-agent': 'Marketo' } },
    token: 'tok-1', apiCallBackKey: 'cbk-2', accessToken: 'at-3', clientSecret: 'cs-4', email: 'a@b.c',
    data: { persons: [{ email: 'x@y.z' }], sealedCallbackCredentials: 'v1.sealed', invocationId: 'inv-1' }
  }, 'something happened')
  const text = lines.join('')
  for (const secret of ['k-123', 'cb-456', 'tok-789', 'c=1', 'tok-1', 'cbk-2', 'at-3', 'cs-4', 'a@b.c', 'x@y.z', 'v1.sealed']) {
    t.notOk(text.includes(secret), `${secret} redacted`)
  }
  t.match(text, /"user-agent":"Marketo"/, 'other headers stay')
  t.match(text, /"invocationId":"inv-1"/, 'ids stay')
  t.match(text, /\[Redacted\]/)
})

t.test('a failed Redis command is logged by name, never with its arguments (an intake entry holds persons)', async (t) => {
  const server = await startLocalRedis()
  const redis = new Redis(server.url)
  t.teardown(async () => { redis.disconnect(); await server.stop() })
  // A real ioredis error: it carries the command it failed, arguments and all.
  const error = await redis.call('XADD', 'mds:{intake:flow-step}', 'not-an-id', 'data', '{"email":"alice@example.com"}').then(() => undefined, (e: unknown) => e)
  t.match(error, { command: { name: 'XADD' } }, 'ioredis attached the command')
  const lines: string[] = []
  const sink = new Writable({ write (chunk: Buffer, _e, done) { lines.push(chunk.toString()); done() } })
  pino(loggerOptions('info', 'test'), sink).warn({ err: error }, 'intake mover: moving a batch failed; retrying')
  const text = lines.join('')
  t.notOk(text.includes('alice@example.com'), 'the email is not in the log')
  t.match(text, /"name":"XADD"/, 'the command\'s name stays, for ops')
  t.match(text, /"args":"\[Redacted\]"/)
})
