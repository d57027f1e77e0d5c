import { hkdfSync } from 'node:crypto'
import type { Logger } from 'pino'
import type { Config } from '../config.ts'
import { readTableOptionSets } from '../dynamics/attribute-metadata.ts'
import type { DataverseClient } from '../dynamics/dataverse-client.ts'
import { RecordLinkStore } from '../links/record-link-store.ts'
import { SyncFailureActivityLog, type CustomActivityWriter } from '../marketo/sync-failure-activity.ts'
import type { RedisClient } from '../queue/connections.ts'
import { fieldFingerprinter } from '../sync/field-fingerprint.ts'
import { readFieldMappingFile } from '../sync/field-mapping-file.ts'
import { SYNC_TABLES } from '../sync/field-mapping.ts'
import type { ParkedChangeRetryDeps } from './parked-change-retry.ts'
import { PairStateStore } from './pair-state-store.ts'
import { ParkedChangeStore } from './parked-changes.ts'

/**
 * The key of the pair-state fingerprints (field-fingerprint.ts), derived from the key-hash secret
 * under its own label: fingerprints and key digests never share one. The worker's passes and a
 * retry run from the API must use the same, or a retry would see every field as changed.
 */
export function fieldFingerprintKey (config: Pick<Config, 'redis'>): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', config.redis.keyHashSecret, 'marketo-dynamics-sync', 'field-fingerprint', 32))
}

export interface ParkedChangeRetryDepsSources {
  readonly config: Config
  readonly logger: Logger
  readonly redis: RedisClient
  readonly dataverse: Pick<DataverseClient, 'retrieveMultiple' | 'updateMultiple'>
  readonly marketo: ParkedChangeRetryDeps['marketo'] & CustomActivityWriter
}

/**
 * What a retry of parked changes needs (parked-change-retry.ts), built as the background sync's
 * worker builds its passes' (background-sync-worker-feature.ts) so any process can run one: the admin
 * API does. The field mapping is read from SYNC_FIELD_MAPPING_FILE (the worker checked it against
 * both schemas at its start); the option sets are I/O, read from Dataverse on the first retry and
 * kept (asked again after a failure). Answers a function giving the deps, ready.
 */
export function parkedChangeRetryDeps (sources: ParkedChangeRetryDepsSources): () => Promise<ParkedChangeRetryDeps> {
  const { config, logger, redis, dataverse, marketo } = sources
  const prefix = config.redis.keyPrefix
  const fingerprintKey = fieldFingerprintKey(config)
  // One per process: the activity type is looked up once, on the first refusal.
  const failureLog = new SyncFailureActivityLog(marketo)
  const parked = new ParkedChangeStore(redis, prefix)
  const links = new RecordLinkStore(redis, prefix)
  const pairs = new PairStateStore(redis, prefix)
  let optionSets: Promise<ParkedChangeRetryDeps['optionSets']> | undefined

  return async () => {
    const mapping = readFieldMappingFile(config.sync.fieldMappingFile)
    optionSets ??= Promise.all(SYNC_TABLES.map(async (table) => [table, await readTableOptionSets(dataverse, table)] as const)).then(Object.fromEntries)
    const sets = await optionSets.catch((error: unknown) => { optionSets = undefined; throw error })
    return {
      dataverse,
      marketo,
      parked,
      links,
      pairs,
      mapping,
      fingerprinter: (pairId) => fieldFingerprinter(fingerprintKey, pairId),
      ...(sets === undefined ? {} : { optionSets: sets }),
      failureLog,
      logger
    }
  }
}
