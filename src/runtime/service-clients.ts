import type { Logger } from 'pino'
import type { Config } from '../config.ts'
import { createMsalAccessTokenProvider } from '../dynamics/access-token-provider.ts'
import { DataverseClient } from '../dynamics/dataverse-client.ts'
import { SharedConcurrencyLimit } from '../dynamics/shared-concurrency-limit.ts'
import { MarketoRestClient, type MarketoRestClientOptions } from '../marketo/marketo-rest-client.ts'
import { MarketoCallBudget } from '../marketo/marketo-call-budget.ts'
import type { RedisClient } from '../queue/connections.ts'
import { createSealedBox, type SealedBox } from '../crypto/sealed-box.ts'
import type { OutsideCallObserver } from '../metrics/outside-calls.ts'

/** The outside-world clients, built from config in one place for the API, the worker and tests. */

/**
 * `sharedLimitRedis` (the worker's): Dataverse requests in flight are bounded across every process
 * by DYNAMICS_TOTAL_CONCURRENCY in Redis, after this process's DYNAMICS_MAX_CONCURRENCY.
 */
export function createDataverseClient (config: Config, logger: Logger, sharedLimitRedis?: RedisClient, observer?: OutsideCallObserver): DataverseClient {
  return new DataverseClient({
    ...(observer === undefined ? {} : { observer }),
    ...(sharedLimitRedis === undefined
      ? {}
      : { sharedLimit: new SharedConcurrencyLimit(sharedLimitRedis, { keyPrefix: config.redis.keyPrefix, maxConcurrent: config.dynamics.sharedConcurrentRequests }) }),
    url: config.dynamics.url,
    tokens: createMsalAccessTokenProvider({
      authorityHost: config.azure.authorityHost,
      tenantId: config.azure.tenantId,
      clientId: config.azure.clientId,
      credential: config.azure.credential,
      resourceUrl: config.dynamics.url
    }),
    logger: logger.child({ client: 'dataverse' }),
    maxConcurrentRequests: config.dynamics.maxConcurrentRequests,
    requestTimeoutMs: config.dynamics.requestTimeoutMs
  })
}

export function createMarketoRestClient (config: Config, limits: Pick<MarketoRestClientOptions, 'callBudget' | 'rateLimitRetries' | 'rateLimitBackoffMs' | 'logger' | 'observer'> = {}): MarketoRestClient {
  return new MarketoRestClient({
    baseUrl: config.marketo.baseUrl,
    clientId: config.marketo.clientId,
    clientSecret: config.marketo.clientSecret,
    ...limits
  })
}

/**
 * The Marketo REST budget every process shares (issue 12 §11, src/marketo/marketo-call-budget.ts),
 * sized by MARKETO_DAILY_CALL_BUDGET, MARKETO_CALLS_PER_20S and MARKETO_CONCURRENT_CALLS, its keys
 * under REDIS_KEY_PREFIX. `redis` should have the worker policy: a call waits out a Redis restart.
 */
export function createMarketoCallBudget (config: Config, redis: RedisClient): MarketoCallBudget {
  return new MarketoCallBudget(redis, {
    keyPrefix: config.redis.keyPrefix,
    dailyBudget: config.marketo.callBudget.dailyCalls,
    callsPerWindow: config.marketo.callBudget.callsPer20s,
    maxConcurrent: config.marketo.callBudget.concurrentCalls
  })
}

/** API seals Marketo's callback credentials into job data; the worker opens them. Same key on both. */
export function createCallbackCredentialsBox (config: Config): SealedBox {
  return createSealedBox(config.ssfs.jobSealingKey, 'callback-credentials')
}
