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
    lagSeconds: Type.Union([Type.Integer(), Type.Null()], { description: 'The age of the oldest change that may not be applied yet (mds_sync_lag_seconds): seconds since the last pass that ended caught up began reading; null before the first read' })
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

const SyncOutcome = Type.Union([Type.Literal('written'), Type.Literal('unchanged'), Type.Literal('filtered'), Type.Literal('refused')], {
  description: 'written: values carried; unchanged: nothing to carry (an echo of our own write, or both sides agree); filtered: the sync filter new_synctomkto is No; refused: the other side refused it (parked, with the code)'
})

const LastSyncOfDirection = Type.Union([Type.Object({
  at: Type.String({ format: 'date-time', description: 'When this direction last decided the pair' }),
  outcome: SyncOutcome,
  code: Type.Optional(Type.String({ description: 'A refusal\'s code (Dynamics\', Marketo\'s or ours); its message is in the person\'s Marketo activity log', examples: ['0x80044331'] })),
  syncedAt: Type.Optional(Type.String({ format: 'date-time', description: 'When this direction last merged the pair and saved its state' }))
}), Type.Null()], { description: 'null: nothing recorded since the pair was linked, or since a resync' })

const FieldOwnerSide = Type.Union([Type.Literal('marketo'), Type.Literal('dynamics')])

export const ExplainAnswer = Type.Object({
  person: Type.Union([Type.Object({
    marketoId: Type.Integer({ examples: [1042] }),
    inMarketo: Type.Boolean({ description: 'Marketo still has the person' }),
    sameEmailPersonIds: Type.Array(Type.Integer(), { description: 'Other persons with the email asked for (the duplicate rule links none of them)' })
  }), Type.Null()]),
  record: Type.Union([Type.Object({
    table: SyncTableName,
    id: Type.String({ examples: [RECORD_ID_EXAMPLE] }),
    inDynamics: Type.Boolean({ description: 'Dataverse still has the record (read now)' })
  }), Type.Null()]),
  linked: Type.Boolean({ description: 'The person and the record are a pair the background sync keeps in step' }),
  lastSync: Type.Object({ 'dynamics-to-marketo': LastSyncOfDirection, 'marketo-to-dynamics': LastSyncOfDirection }),
  collisionWinner: Type.Union([FieldOwnerSide, Type.Null()], { description: 'The side whose value wins a field changed on both: Marketo on leads, Dynamics on contacts' }),
  fields: Type.Array(Type.Object({
    marketoField: Type.String(),
    column: Type.String(),
    direction: Type.Union([Type.Literal('both'), Type.Literal('toMarketo'), Type.Literal('toDynamics')]),
    owner: FieldOwnerSide
  }), { description: 'Each mapped field and the side that owns it: the only source of a one-way field, the collision rule\'s winner of a two-way one' }),
  syncFilter: Type.Union([Type.Object({
    column: Type.Literal('new_synctomkto'),
    present: Type.Boolean({ description: 'The table has the column; without it every record syncs' }),
    value: Type.Optional(Type.Union([Type.Boolean(), Type.Null()], { description: 'The record\'s value, read live from Dynamics' })),
    decision: Type.Union([Type.Literal('sync'), Type.Literal('skip')])
  }), Type.Null()], { description: 'null: no record to read' }),
  parked: Type.Array(ParkedFailure, { description: 'The pair\'s parked failures, each direction\'s' }),
  notes: Type.Array(Type.String(), { description: 'Why the pair is as it is, in sentences' })
}, {
  title: 'Explanation',
  examples: [{
    person: { marketoId: 1042, inMarketo: true, sameEmailPersonIds: [] },
    record: { table: 'lead', id: RECORD_ID_EXAMPLE, inDynamics: true },
    linked: true,
    lastSync: {
      'dynamics-to-marketo': { at: '2026-05-04T10:02:13.000Z', outcome: 'written', syncedAt: '2026-05-04T10:02:13.000Z' },
      'marketo-to-dynamics': { at: '2026-05-04T10:05:40.000Z', outcome: 'refused', code: '0x80044331', syncedAt: '2026-05-03T16:20:01.000Z' }
    },
    collisionWinner: 'marketo',
    fields: [{ marketoField: 'title', column: 'jobtitle', direction: 'both', owner: 'marketo' }, { marketoField: 'leadScore', column: 'new_leadscore', direction: 'toDynamics', owner: 'marketo' }],
    syncFilter: { column: 'new_synctomkto', present: true, value: true, decision: 'sync' },
    parked: [{ id: PARKED_ID_EXAMPLE, direction: 'marketo-to-dynamics', table: 'lead', recordId: RECORD_ID_EXAMPLE, personId: 1042, fields: ['title'], columns: ['jobtitle'], code: '0x80044331', status: 400, activityLogged: true, parkedAt: '2026-05-04T10:05:40.000Z', lastRefusedAt: '2026-05-04T10:05:40.000Z', attempts: 1 }],
    notes: ['Parked: Dynamics refused the person\'s change of title with code 0x80044331. Dynamics\' message is in the person\'s Marketo activity log ("Microsoft Sync Failed"); the service does not keep it (it may quote the value). Fix the value in Marketo, then retry the parked failure or resync.']
  }]
})
export type ExplainAnswer = Static<typeof ExplainAnswer>

export const ExplainPersonParams = Type.Object({
  idOrEmail: Type.String({ minLength: 1, maxLength: 254, description: 'A Marketo person id, or an email (looked up in Marketo with one Get Leads call)', examples: ['1042', 'ada@example.com'] })
})

/** The person to explain, in the body: an email in a URL path lands in proxies' access logs and the browser's history. */
export const ExplainPersonBody = Type.Union([
  Type.Object({ email: Type.String({ minLength: 3, maxLength: 254, pattern: '@', description: 'Looked up in Marketo with one Get Leads call', examples: ['ada@example.com'] }) }, { additionalProperties: false }),
  Type.Object({ marketoId: Type.Integer({ minimum: 1, description: 'A Marketo person id', examples: [1042] }) }, { additionalProperties: false })
], { examples: [{ email: 'ada@example.com' }, { marketoId: 1042 }] })

export const ExplainRecordParams = Type.Object({
  table: SyncTableName,
  id: Type.String({ maxLength: 36, description: 'The Dynamics lead\'s or contact\'s GUID', examples: [RECORD_ID_EXAMPLE] })
})

export const ResyncPersonBody = Type.Union([
  Type.Object({ marketoId: Type.Integer({ minimum: 1, examples: [1042] }) }, { additionalProperties: false }),
  Type.Object({ email: Type.String({ minLength: 3, maxLength: 254, examples: ['ada@example.com'] }) }, { additionalProperties: false })
], { description: 'The person, by Marketo id or by email', examples: [{ marketoId: 1042 }] })

export const ResyncRecordBody = Type.Object({
  table: SyncTableName,
  id: Type.String({ maxLength: 36, description: 'The Dynamics record\'s GUID', examples: [RECORD_ID_EXAMPLE] })
}, { additionalProperties: false, examples: [{ table: 'contact', id: RECORD_ID_EXAMPLE }] })

export const ResyncAnswer = Type.Object({
  result: Type.Union([Type.Literal('resynced'), Type.Literal('unlinked')], { description: 'unlinked: the person has no Dynamics record; nothing was written' }),
  marketoId: Type.Union([Type.Integer(), Type.Null()]),
  record: Type.Union([Type.Object({ table: SyncTableName, id: Type.String() }), Type.Null()]),
  toMarketo: Type.Optional(Type.Union([Type.Literal('delivered'), Type.Literal('unchanged'), Type.Literal('refused'), Type.Literal('filtered'), Type.Literal('paused')], { description: 'Dynamics → Marketo: delivered (written, created or linked), unchanged, refused (parked), filtered (new_synctomkto is No), paused (the direction is paused: nothing written)' })),
  toDynamics: Type.Optional(Type.Union([Type.Literal('written'), Type.Literal('unchanged'), Type.Literal('refused'), Type.Literal('person-missing'), Type.Literal('not-linked'), Type.Literal('paused')], { description: 'Marketo → Dynamics: written, unchanged, refused (parked, the message in the person\'s activity log), person-missing (deleted in Marketo), not-linked (the record has no person), paused (the direction is paused: nothing written)' })),
  notes: Type.Array(Type.String())
}, { examples: [{ result: 'resynced', marketoId: 1042, record: { table: 'lead', id: RECORD_ID_EXAMPLE }, toMarketo: 'delivered', toDynamics: 'written', notes: [] }] })
export type ResyncAnswer = Static<typeof ResyncAnswer>
