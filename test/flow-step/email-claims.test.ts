import t from 'tap'
import { createHash, createHmac } from 'node:crypto'
import { Redis } from 'ioredis'
import { startLocalRedis } from '../../sandbox/redis-server.ts'
import { EmailClaims, EmailClaimTimeoutError } from '../../src/flow-step/email-claims.ts'
import { emailClaimKeys } from '../../src/queue/redis-keys.ts'

const keyHashSecret = 'k'.repeat(32)
const redisServer = await startLocalRedis()
const redis = new Redis(redisServer.url)
t.teardown(async () => {
  redis.disconnect()
  await redisServer.stop()
})

t.test('of many concurrent claimants for one email, one creates and the rest see its record', async (t) => {
  const claims = new EmailClaims(redis, 't1', { keyHashSecret, pollIntervalMs: 5 })
  const results = await Promise.all(Array.from({ length: 20 }, async (_, i) => {
    const result = await claims.claim('same@example.com', `invocation-${i}`, 0)
    if (result.kind === 'claimed') await result.release({ type: 'Lead', id: 'lead-1' }, { created: true })
    return result
  }))
  t.equal(results.filter((r) => r.kind === 'claimed').length, 1)
  const creator = `invocation-${results.findIndex((r) => r.kind === 'claimed')}`
  const seen = results.flatMap((r) => r.kind === 'created-by-other' ? [r.record] : [])
  t.same(seen, Array(19).fill({ type: 'Lead', id: 'lead-1', invocationId: creator }))
})

t.test('while one claimant creates, others wait; if it creates nothing, the next one may try', async (t) => {
  const claims = new EmailClaims(redis, 't2', { keyHashSecret, pollIntervalMs: 5 })
  const impatient = new EmailClaims(redis, 't2', { keyHashSecret, pollIntervalMs: 5, waitTimeoutMs: 30 })
  const first = await claims.claim('refused@example.com', 'inv-a', 0)
  t.equal(first.kind, 'claimed')
  await t.rejects(impatient.claim('refused@example.com', 'inv-b', 0), EmailClaimTimeoutError, 'held: the other waits')
  if (first.kind === 'claimed') await first.release()
  t.match(await claims.claim('refused@example.com', 'inv-b', 0), { kind: 'claimed' })
})

t.test('a claim is kept alive while its holder works, and lapses when the holder stops', async (t) => {
  const claims = new EmailClaims(redis, 't3', { keyHashSecret, pollIntervalMs: 5, claimTtlMs: 60 })
  const holder = await claims.claim('slow.create@example.com', 'inv-x', 0)
  t.equal(holder.kind, 'claimed')
  if (holder.kind !== 'claimed') return
  const impatient = new EmailClaims(redis, 't3', { keyHashSecret, pollIntervalMs: 5, waitTimeoutMs: 300 })
  await t.rejects(impatient.claim('slow.create@example.com', 'inv-y', 0), EmailClaimTimeoutError, 'five TTLs later the heartbeat still holds it')
  t.equal(await holder.confirm(), true)
  holder.abandon()
  const next = await claims.claim('slow.create@example.com', 'inv-y', 0)
  t.match(next, { kind: 'claimed', mustLookUpAgain: true }, 'after it lapses, the next claimant must look Dynamics up first')
  t.equal(await holder.confirm(), false, 'the old holder knows it lost the claim')
})

t.test('the invocation that created a record recognises it on a retry', async (t) => {
  const claims = new EmailClaims(redis, 't6', { keyHashSecret, pollIntervalMs: 5 })
  const first = await claims.claim('mine@example.com', 'inv-me', 0)
  if (first.kind === 'claimed') await first.release({ type: 'Lead', id: 'lead-9' }, { created: true })
  t.match(await claims.claim('mine@example.com', 'inv-me', 0), { kind: 'created-by-other', record: { id: 'lead-9', invocationId: 'inv-me' } })
  const own = await claims.settleOwnCreations(new Map([['mine@example.com', { type: 'Lead', id: 'lead-9' }], ['other@example.com', { type: 'Lead', id: 'lead-8' }]]), 'inv-me')
  t.same([...own], ['mine@example.com'])
})

t.test('a claim held too long by someone else ends the wait with a retryable error', async (t) => {
  const claims = new EmailClaims(redis, 't4', { keyHashSecret, pollIntervalMs: 5, waitTimeoutMs: 50 })
  await claims.claim('stuck@example.com', 'holder', 0)
  await t.rejects(claims.claim('stuck@example.com', 'waiter', 0), EmailClaimTimeoutError)
})

t.test('a claimant whose look-up predates another claim looks again, even after that claim lapsed unseen', async (t) => {
  const claims = new EmailClaims(redis, 't7', { keyHashSecret, pollIntervalMs: 5, claimTtlMs: 40 })
  const [snapshot] = [...(await claims.generations(['lapsed@example.com'])).values()]
  const earlier = await claims.claim('lapsed@example.com', 'inv-timed-out', snapshot!)
  t.match(earlier, { kind: 'claimed', mustLookUpAgain: false })
  if (earlier.kind === 'claimed') earlier.abandon() // its create timed out: the lead may exist
  const deadline = Date.now() + 5_000
  const claimKey = emailClaimKeys('t7', createHmac('sha256', keyHashSecret).update('lapsed@example.com').digest('hex')).claim
  // Polls a condition with a deadline: the claim must lapse before the late claimant arrives.
  while (await redis.exists(claimKey) === 1) {
    if (Date.now() > deadline) throw new Error('the claim never lapsed')
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  t.match(await claims.claim('lapsed@example.com', 'inv-late', snapshot!), { kind: 'claimed', mustLookUpAgain: true }, 'it must not trust its older look-up')
})

t.test('a look-up made while another invocation held the claim is looked at again once that claim lapses', async (t) => {
  const claims = new EmailClaims(redis, 't7b', { keyHashSecret, pollIntervalMs: 5, claimTtlMs: 40 })
  const email = 'raced@example.com'
  const holder = await claims.claim(email, 'inv-holder', 0)
  t.match(holder, { kind: 'claimed', mustLookUpAgain: false })
  // While the holder creates, another invocation reads the generation and looks Dynamics up: the
  // create has not landed yet, so it finds nothing.
  const [snapshot] = [...(await claims.generations([email])).values()]
  if (holder.kind === 'claimed') holder.abandon() // the holder's create timed out: the lead may exist
  // claim() waits for the abandoned claim to lapse, then takes it.
  t.match(await claims.claim(email, 'inv-late', snapshot!), { kind: 'claimed', mustLookUpAgain: true }, 'its look-up raced the holder\'s create: it looks again')
})

t.test('a record is remembered even when its creator lost the claim meanwhile', async (t) => {
  const claims = new EmailClaims(redis, 't8', { keyHashSecret, pollIntervalMs: 5, claimTtlMs: 40 })
  const slow = await claims.claim('slow@example.com', 'inv-slow', 0)
  if (slow.kind !== 'claimed') return t.fail('expected a claim')
  slow.abandon()
  const next = await claims.claim('slow@example.com', 'inv-next', 0) // waits for the lapse
  t.equal(next.kind, 'claimed')
  await slow.release({ type: 'Lead', id: 'lead-slow' }, { created: true })
  if (next.kind === 'claimed') t.equal(await next.confirm(), false, 'the next holder is told before it creates a second lead')
  t.match(await claims.claim('slow@example.com', 'inv-third', 0), { kind: 'created-by-other', record: { id: 'lead-slow', invocationId: 'inv-slow' } })
})

t.test('keys hold a digest, never the email', async (t) => {
  const claims = new EmailClaims(redis, 't5', { keyHashSecret })
  const claim = await claims.claim('private.person@example.com', 'inv', 0)
  if (claim.kind === 'claimed') await claim.release({ type: 'Contact', id: 'c-1' })
  const keys = await redis.keys('t5:*')
  t.ok(keys.length > 0)
  t.notOk(keys.some((k) => k.includes('private')))
})

t.test('email digests are keyed: not the plain SHA-256 a list of addresses reverses, and another secret gives other keys', async (t) => {
  const email = 'known.address@example.com'
  const digestsUnder = async (prefix: string, secret: string): Promise<string[]> => {
    const claim = await new EmailClaims(redis, prefix, { keyHashSecret: secret }).claim(email, 'inv', 0)
    if (claim.kind === 'claimed') await claim.release({ type: 'Lead', id: 'l-1' })
    // Keys read `<prefix>:email:{<digest>}:<kind>`: the digest is the hash tag.
    return (await redis.keys(`${prefix}:*`)).map((key) => /\{([0-9a-f]+)\}/.exec(key)?.[1] ?? key)
  }
  const digests = await digestsUnder('t9', keyHashSecret)
  t.ok(digests.length > 0)
  t.notOk(digests.includes(createHash('sha256').update(email).digest('hex')), 'no key holds sha256(email)')
  t.ok(digests.every((digest) => digest === createHmac('sha256', keyHashSecret).update(email).digest('hex')), 'each holds HMAC-SHA256 under the secret')
  const otherDigests = await digestsUnder('t9b', 'another-secret-of-32-characters!')
  t.notOk(otherDigests.some((digest) => digests.includes(digest)), 'another secret, other keys')
})

t.test('two workers holding the same secret meet on one claim; the record one creates is what the other sees', async (t) => {
  const otherConnection = new Redis(redisServer.url)
  t.teardown(() => { otherConnection.disconnect() })
  const first = new EmailClaims(redis, 't10', { keyHashSecret, pollIntervalMs: 5 })
  const second = new EmailClaims(otherConnection, 't10', { keyHashSecret, pollIntervalMs: 5 })
  const held = await first.claim('shared@example.com', 'inv-first', 0)
  if (held.kind !== 'claimed') return t.fail('expected a claim')
  const waiting = second.claim('shared@example.com', 'inv-second', 0)
  await held.release({ type: 'Lead', id: 'lead-shared' }, { created: true })
  t.match(await waiting, { kind: 'created-by-other', record: { id: 'lead-shared', invocationId: 'inv-first' } })
})

t.test('a secret shorter than 32 characters is refused', async (t) => {
  t.throws(() => new EmailClaims(redis, 't11', { keyHashSecret: 'short' }), RangeError)
})
