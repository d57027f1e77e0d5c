import type { RedisClient } from '../queue/connections.ts'
import { syncCheckpointKey } from '../queue/redis-keys.ts'

/**
 * Where each change feed of the background sync has got to: per (direction, table) a cursor (a
 * Dataverse next or delta link, later a Marketo paging token) and a version, in Nango's shape
 * (NangoHQ/nango packages/shared/lib/services/checkpoints: upsert with an expected version, a
 * conflict when it moved). A reader loads the checkpoint, reads the page at its cursor, queues or
 * applies that page's changes, and only then saves the next cursor with the version it loaded
 * (issue 12 §10; sync-engines.md §2.4). Two runners that loaded the same version cannot both
 * advance it: the second save is refused and that runner stops, so a page is never skipped by a
 * runner that raced ahead. A runner killed before its save leaves the old cursor: the page is read
 * again (at least once, nothing lost).
 *
 *   <prefix>:{checkpoint:<direction>:<table>}  hash { version, cursor, savedAt }
 *
 * A missing key is version 0 with no cursor. A checkpoint is never deleted, only reset (saved
 * with no cursor), so its version only grows: a runner holding a version from before a reset
 * cannot mistake the reset checkpoint for the one it loaded.
 */

export type FeedDirection = 'dynamics-to-marketo' | 'marketo-to-dynamics'

export interface CheckpointName {
  readonly direction: FeedDirection
  /** `lead`, `contact` (Dynamics tables), or the name of a Marketo feed. */
  readonly table: string
}

export interface Checkpoint {
  /** 0 before the first save; each save adds one. */
  readonly version: number
  /** Undefined: begin with a full read. */
  readonly cursor: string | undefined
  readonly savedAt: Date | undefined
}

export class CheckpointConflictError extends Error {
  readonly code = 'CHECKPOINT_CONFLICT'
  constructor (readonly checkpoint: CheckpointName, readonly expectedVersion: number, readonly currentVersion: number) {
    super(`checkpoint ${checkpoint.direction}/${checkpoint.table} is at version ${currentVersion}, not ${expectedVersion}: another runner advanced it`)
    this.name = 'CheckpointConflictError'
  }
}

/**
 * Compare-and-set in one script, so no other client's write can fall between the version check and
 * the write (a WATCH transaction would do too, but needs a connection of its own per caller).
 * Answers {1, newVersion} or {0, currentVersion}.
 */
const SAVE_IF_VERSION = `
local current = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if current ~= tonumber(ARGV[1]) then return {0, current} end
redis.call('HSET', KEYS[1], 'version', current + 1, 'cursor', ARGV[2], 'savedAt', ARGV[3])
return {1, current + 1}
`

export class CheckpointStore {
  constructor (private readonly redis: RedisClient, private readonly prefix: string) {}

  #key (name: CheckpointName): string {
    return syncCheckpointKey(this.prefix, name.direction, name.table)
  }

  async load (name: CheckpointName): Promise<Checkpoint> {
    const [version, cursor, savedAt] = await this.redis.hmget(this.#key(name), 'version', 'cursor', 'savedAt')
    return {
      version: version === null || version === undefined ? 0 : Number(version),
      cursor: cursor === null || cursor === undefined || cursor === '' ? undefined : cursor,
      savedAt: savedAt === null || savedAt === undefined ? undefined : new Date(savedAt)
    }
  }

  /**
   * Advances the checkpoint to `cursor` (undefined: reset, the next read is a full one) if it is
   * still at `expectedVersion`; answers the saved checkpoint. Throws CheckpointConflictError when
   * another runner advanced it since it was loaded.
   */
  async save (name: CheckpointName, expectedVersion: number, cursor: string | undefined): Promise<Checkpoint> {
    const savedAt = new Date()
    const [saved, version] = await this.redis.eval(SAVE_IF_VERSION, 1, this.#key(name), expectedVersion, cursor ?? '', savedAt.toISOString()) as [number, number]
    if (saved !== 1) throw new CheckpointConflictError(name, expectedVersion, version)
    return { version, cursor, savedAt }
  }
}
