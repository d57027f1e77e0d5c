import { Type, type Static } from 'typebox'

/**
 * The admin API's schemas (routes/admin-*.ts): validation, types and the OpenAPI document (tag
 * `admin`) from one source. Querystrings are strings (the app does not coerce types), so numbers in
 * them are patterns, parsed in src/admin/.
 */

export const ADMIN_TAG = 'admin'
/** Either scheme opens the admin API (src/admin/admin-auth.ts); declared in src/app.ts's components. */
export const ADMIN_SECURITY: Array<Record<string, string[]>> = [{ adminBearer: [] }, { adminBasic: [] }]

const RECORD_ID_EXAMPLE = '3f2a1c9e-5b7d-4e21-9c3a-0d8e6f4b2a17'
const PARKED_ID_EXAMPLE = `marketo-to-dynamics:lead:${RECORD_ID_EXAMPLE}`
const DYNAMICS_PARKED_ID_EXAMPLE = 'dynamics-to-marketo:contact:8b1e4d2a-7c3f-4a90-b5e6-2f9d0c1a3e84'

export const ParkedDirection = Type.Union([Type.Literal('marketo-to-dynamics'), Type.Literal('dynamics-to-marketo')], { description: 'The change\'s direction: marketo-to-dynamics, Dynamics refused a Marketo change; dynamics-to-marketo, Marketo refused a Dynamics record (or the duplicate rule reported it)', examples: ['marketo-to-dynamics'] })
export const SyncTableName = Type.Union([Type.Literal('lead'), Type.Literal('contact')], { description: 'The Dynamics table' })
export const SyncDirection = Type.Union([Type.Literal('dynamics-to-marketo'), Type.Literal('marketo-to-dynamics')], { examples: ['dynamics-to-marketo'] })

export const ParkedFailure = Type.Object({
  id: Type.String({ description: '<direction>:<table>:<record GUID>', examples: [PARKED_ID_EXAMPLE] }),
  direction: ParkedDirection,
  table: SyncTableName,
  recordId: Type.String({ description: 'The Dynamics record', examples: [RECORD_ID_EXAMPLE] }),
  personId: Type.Optional(Type.Integer({ description: 'marketo-to-dynamics: the Marketo person linked to it', examples: [1042] })),
  personIds: Type.Optional(Type.Array(Type.Integer(), { description: 'dynamics-to-marketo: the Marketo persons involved (none, the linked one, or the ones an ambiguous email matched)', examples: [[1042, 1043]] })),
  fields: Type.Array(Type.String(), { description: 'Marketo fields whose change was refused', examples: [['title']] }),
  columns: Type.Array(Type.String(), { description: 'Dataverse columns written', examples: [['jobtitle']] }),
  code: Type.String({ description: 'The reason: Dynamics\' error code, or ours (OPTION_LABEL_UNKNOWN). Dynamics\' message is in the person\'s Marketo activity log, never here (it may quote the value)', examples: ['0x80044331'] }),
  status: Type.Optional(Type.Integer({ description: 'Dynamics\' HTTP status', examples: [400] })),
  activityLogged: Type.Optional(Type.Boolean({ description: 'marketo-to-dynamics: the refusal reached the person\'s activity log' })),
  parkedAt: Type.String({ format: 'date-time', examples: ['2026-05-04T09:12:44.000Z'] }),
  lastRefusedAt: Type.String({ format: 'date-time', examples: ['2026-05-04T10:02:13.000Z'] }),
  attempts: Type.Integer({ minimum: 1, description: 'Writes refused so far', examples: [2] })
}, { title: 'Parked failure' })
export type ParkedFailure = Static<typeof ParkedFailure>

export const ParkedFailureQuery = Type.Object({
  code: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'Only this reason', examples: ['0x80044331'] })),
  direction: Type.Optional(ParkedDirection),
  table: Type.Optional(SyncTableName),
  olderThan: Type.Optional(Type.String({ pattern: '^[0-9]{1,6}[smhd]$', description: 'Only entries first parked longer ago than this: a number and s, m, h or d', examples: ['2h'] })),
  limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,4}$', description: 'At most this many, oldest first (1–1000; 100 by default)', examples: ['100'] }))
}, { additionalProperties: false })

export const ParkedFailureList = Type.Object({
  entries: Type.Array(ParkedFailure),
  more: Type.Boolean({ description: 'More entries match than the limit returned' })
}, { examples: [{ entries: [{ id: PARKED_ID_EXAMPLE, direction: 'marketo-to-dynamics', table: 'lead', recordId: RECORD_ID_EXAMPLE, personId: 1042, fields: ['title'], columns: ['jobtitle'], code: '0x80044331', status: 400, activityLogged: true, parkedAt: '2026-05-04T09:12:44.000Z', lastRefusedAt: '2026-05-04T09:12:44.000Z', attempts: 1 }], more: false }] })

export const ParkedFailureParams = Type.Object({
  id: Type.String({ maxLength: 100, description: 'A parked failure\'s id', examples: [PARKED_ID_EXAMPLE] })
})

export const RetryResult = Type.Union([
  Type.Literal('written'), Type.Literal('delivered'), Type.Literal('unchanged'), Type.Literal('refused'), Type.Literal('filtered'),
  Type.Literal('record-missing'), Type.Literal('person-missing'), Type.Literal('relinked')
], {
  description: 'Either direction: unchanged: nothing left to write, both sides agree, cleared; refused: refused again (or, dynamics-to-marketo, still without an email or ambiguous), kept with one more attempt; record-missing: the Dynamics record is gone, cleared. ' +
    'marketo-to-dynamics: written: the person\'s current values written to Dynamics, cleared (a refusal adds one more activity to the person\'s log); person-missing, relinked: nothing can be written for this pair any more, cleared. ' +
    'dynamics-to-marketo: delivered: the record as Dynamics holds it now written to its person, created or linked, cleared; filtered: its sync filter new_synctomkto is now No, cleared',
  examples: ['written', 'delivered']
})

export const ParkedRetryAnswer = Type.Object({
  id: Type.String({ examples: [PARKED_ID_EXAMPLE] }),
  result: RetryResult
}, { examples: [{ id: PARKED_ID_EXAMPLE, result: 'written' }, { id: DYNAMICS_PARKED_ID_EXAMPLE, result: 'delivered' }] })

export const ParkedBulkRetryAnswer = Type.Object({
  results: Type.Array(ParkedRetryAnswer, { description: 'Each entry retried, oldest first, both directions unless the filter names one' })
}, { examples: [{ results: [{ id: PARKED_ID_EXAMPLE, result: 'refused' }, { id: DYNAMICS_PARKED_ID_EXAMPLE, result: 'delivered' }] }] })

export const ParkedDiscardAnswer = Type.Object({
  discarded: Type.Array(Type.String(), { description: 'The ids discarded' })
}, { examples: [{ discarded: [PARKED_ID_EXAMPLE] }] })

const CursorKind = Type.Union([
  Type.Literal('none'), Type.Literal('delta-link'), Type.Literal('next-link'), Type.Literal('watermark'), Type.Literal('paging-token')
], { description: 'none: the next read is a full one (Dynamics) or starts now (Marketo); next-link: a read is part-way, more pages are waiting' })

const NullableDate = Type.Union([Type.String({ format: 'date-time' }), Type.Null()])

export const SyncDirectionStatus = Type.Object({
  direction: SyncDirection,
  paused: Type.Boolean(),
  pausedAt: NullableDate,
  feeds: Type.Array(Type.Object({
    feed: Type.String({ description: 'lead, contact (Dynamics tables) or person (Marketo\'s feed)' }),
    cursor: Type.Object({
      kind: CursorKind,
      version: Type.Integer({ description: 'Saves so far' }),
      savedAt: NullableDate
    }, { description: 'The cursor itself is not shown (a long link carrying a token)' }),
    lagSeconds: Type.Union([Type.Integer(), Type.Null()], { description: 'Upper bound of how long a change may have waited: every change made before the cursor was saved has been applied' })
  })),
  passes: Type.Object({
    queue: Type.String(),
    waiting: Type.Integer(),
    active: Type.Integer(),
    delayed: Type.Integer(),
    failed: Type.Integer()
  }, { description: 'The direction\'s pass jobs in BullMQ; how many changes are left is not known (neither side says)' })
}, { title: 'Sync direction' })

const SYNC_DIRECTION_EXAMPLE = {
  direction: 'dynamics-to-marketo',
  paused: false,
  pausedAt: null,
  feeds: [
    { feed: 'lead', cursor: { kind: 'delta-link', version: 412, savedAt: '2026-05-04T10:02:13.000Z' }, lagSeconds: 2 },
    { feed: 'contact', cursor: { kind: 'watermark', version: 97, savedAt: '2026-05-04T10:02:12.000Z' }, lagSeconds: 3 }
  ],
  passes: { queue: 'sync-dynamics-changes', waiting: 0, active: 1, delayed: 2, failed: 0 }
}

export const SyncDirectionList = Type.Object({
  directions: Type.Array(SyncDirectionStatus)
}, { examples: [{ directions: [SYNC_DIRECTION_EXAMPLE] }] })

export const SyncDirectionParams = Type.Object({ direction: SyncDirection })

export const SyncDirectionAnswer = Type.Object({ direction: SyncDirectionStatus }, { examples: [{ direction: { ...SYNC_DIRECTION_EXAMPLE, paused: true, pausedAt: '2026-05-04T10:05:00.000Z' } }] })
