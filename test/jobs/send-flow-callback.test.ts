import t from 'tap'
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Worker, type Job } from 'bullmq'
import { Redis } from 'ioredis'
import { startLocalRedis } from '../../sandbox/redis-server.ts'
import { createSealedBox } from '../../src/crypto/sealed-box.ts'
import { createFlowStepQueues } from '../../src/queue/create-queues.ts'
import { queuePrefix } from '../../src/queue/redis-keys.ts'
import { flowCallbackJobId } from '../../src/queue/job-ids.ts'
import { QUEUE } from '../../src/queue/names.ts'
import type { FlowCallbackJobData } from '../../src/queue/payloads.ts'
import { parseCallbackHostAllowList } from '../../src/ssfs/callback-url-policy.ts'
import { createSendFlowCallbackProcessor } from '../../jobs/send-flow-callback.ts'

/**
 * The callback job checks the URL against the allow-list as it is when the job runs: a URL no
 * longer allowed (allow-list narrowed, job data altered in Redis) is never called, and the job is
 * parked as failed with the reason instead of retried. Real Redis, real BullMQ, real HTTP.
 */

const redisServer = await startLocalRedis()
const redis = new Redis(redisServer.url, { maxRetriesPerRequest: null })
const prefix = 'callback-recheck'
const queues = createFlowStepQueues(redis, { prefix, onError: () => undefined, flowStepRetry: { attempts: 1, backoffMs: 10 }, callbackRetry: { attempts: 3, backoffMs: 10 } })
const box = createSealedBox('s'.repeat(32), 'callback-credentials')

/** A Marketo callback endpoint stand-in that counts what reaches it. */
async function startRecordingEndpoint (): Promise<{ origin: string, calls: () => number, server: Server }> {
  let calls = 0
  const server = createServer((request, response) => {
    calls++
    request.resume()
    request.on('end', () => { response.writeHead(200, { 'Content-Type': 'application/json' }).end('{}') })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return { origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, calls: () => calls, server }
}

const marketo = await startRecordingEndpoint()
const elsewhere = await startRecordingEndpoint()
t.teardown(async () => {
  await queues.close()
  redis.disconnect()
  await redisServer.stop()
  for (const endpoint of [marketo, elsewhere]) {
    endpoint.server.closeAllConnections()
    endpoint.server.close()
  }
})

function runCallbackWorker (t: { teardown: (fn: () => Promise<void>) => void }, allowList: string): Worker<FlowCallbackJobData> {
  const connection = redis.duplicate()
  const worker = new Worker<FlowCallbackJobData>(QUEUE.flowStepCallback, createSendFlowCallbackProcessor({
    callbackCredentialsBox: box,
    timeoutMs: 2_000,
    callbackHosts: parseCallbackHostAllowList(allowList)
  }), { connection, prefix: queuePrefix(prefix, QUEUE.flowStepCallback) })
  worker.on('error', () => undefined)
  t.teardown(async () => {
    await worker.close()
    connection.disconnect()
  })
  return worker
}

async function queueCallback (invocationId: string, callbackUrl: string): Promise<string> {
  const jobId = flowCallbackJobId(invocationId)
  await queues.flowStepCallback.add('send-flow-callback', {
    invocationId,
    munchkinId: '123-ABC-456',
    callbackUrl,
    sealedCallbackCredentials: box.seal(JSON.stringify({ token: 'one-time-token', apiCallBackKey: 'callback-key' })),
    outcomes: [{ marketoId: 1, kind: 'created', recordType: 'Lead', recordId: 'lead-1' }]
  }, { jobId })
  return jobId
}

/** Resolves with the job once the worker has settled it for good (completed, or failed with no try left). */
/** The job's last outcome, or a failure naming it after `deadlineMs` (a worker that never sees the job must not hang the suite). */
async function settled (worker: Worker<FlowCallbackJobData>, jobId: string, deadlineMs = 15_000): Promise<Job<FlowCallbackJobData>> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await new Promise((resolve, reject) => {
      timer = setTimeout(() => { reject(new Error(`callback job ${jobId} neither completed nor failed for good within ${deadlineMs} ms`)) }, deadlineMs)
      worker.on('completed', (job) => { if (job.id === jobId) resolve(job) })
      worker.on('failed', (job, error) => {
        if (job?.id === jobId && (error.name === 'UnrecoverableError' || job.attemptsMade >= (job.opts.attempts ?? 1))) resolve(job)
      })
    })
  } finally {
    clearTimeout(timer)
  }
}

t.test('an allowed callback URL is called', async (t) => {
  const worker = runCallbackWorker(t, marketo.origin)
  const before = marketo.calls()
  const jobId = await queueCallback('inv-allowed', `${marketo.origin}/callback`)
  await settled(worker, jobId)
  t.equal(await queues.flowStepCallback.getJobState(jobId), 'completed')
  t.equal(marketo.calls() - before, 1)
})

t.test('a callback URL the allow-list no longer covers is parked as failed with the reason, never called, not retried', async (t) => {
  // Queued while the allow-list named this host; the worker now runs with a narrower one.
  const jobId = await queueCallback('inv-narrowed', `${elsewhere.origin}/callback`)
  const worker = runCallbackWorker(t, marketo.origin)
  const job = await settled(worker, jobId)
  t.equal(await queues.flowStepCallback.getJobState(jobId), 'failed')
  t.match(job.failedReason, /^CALLBACK_URL_NOT_ALLOWED: .*is not on the allow-list/)
  t.equal(job.attemptsMade, 1, 'parked at once: retrying cannot make it allowed')
  t.equal(elsewhere.calls(), 0, 'the host off the list never heard from the worker')
})

t.test('a job whose callback URL was altered in Redis is never called', async (t) => {
  const jobId = await queueCallback('inv-tampered', `${marketo.origin}/callback`)
  // Someone with write access to Redis points the one-time token elsewhere before a worker runs it.
  const key = `${queuePrefix(prefix, QUEUE.flowStepCallback)}:${QUEUE.flowStepCallback}:${jobId}`
  const data = JSON.parse(await redis.hget(key, 'data') ?? '{}') as FlowCallbackJobData
  await redis.hset(key, 'data', JSON.stringify({ ...data, callbackUrl: `http://localhost:${new URL(elsewhere.origin).port}/steal` }))
  const worker = runCallbackWorker(t, marketo.origin)
  const job = await settled(worker, jobId)
  t.match(job.failedReason, /^CALLBACK_URL_NOT_ALLOWED: /)
  t.equal(elsewhere.calls(), 0)
})
