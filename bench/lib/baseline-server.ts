import Fastify from 'fastify'
import { Redis } from 'ioredis'

/**
 * The intake benchmark's baseline: the least a Fastify endpoint storing an invocation can do —
 * parse the JSON body, one Redis `SET` on the same Redis, answer 201. Run as its own process
 * (like the API) by bench/intake.bench.ts; configured by PORT and REDIS_URL, and AUTO_PIPELINING=1
 * for the variant whose Redis client batches commands per event-loop turn as the API's does.
 */
const port = Number(process.env.PORT)
const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', {
  enableOfflineQueue: false,
  maxRetriesPerRequest: 1,
  enableAutoPipelining: process.env.AUTO_PIPELINING === '1'
})
const app = Fastify({ logger: false, bodyLimit: 4 * 1024 * 1024 })
let sequence = 0

app.post('/submitAsyncAction', async (request, reply) => {
  const token = (request.body as { token?: unknown } | null)?.token
  await redis.set(`baseline:${typeof token === 'string' ? token : ++sequence}`, '1')
  return await reply.code(201).send({ accepted: true })
})
app.get('/health/ready', async () => ({ ok: true }))

await app.listen({ host: '127.0.0.1', port })
process.on('SIGTERM', () => { void app.close().then(() => { redis.disconnect() }) })
