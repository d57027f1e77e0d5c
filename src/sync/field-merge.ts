import type { RecordType } from '../domain/record-type.ts'
import {
  canonicalFieldValue, writableFieldValue,
  type FieldFingerprint, type FieldFingerprinter, type FieldValue, type FieldValues
} from './field-fingerprint.ts'

/**
 * The field-by-field merge of one linked pair (a Marketo person ⇄ a Dynamics lead or contact):
 * a three-way merge of each mapped field against its last-synced state (issue 12 §5, §6). Pure:
 * plain data in, the writes, the new state and a decision per field out. The caller reads, calls
 * this, writes, and saves `lastSynced` only once the writes are applied — if it stops in between,
 * the next round sees both sides already equal ('converged') and writes nothing twice.
 */

export type SyncSide = 'marketo' | 'dynamics'

/** Fingerprint per mapped field of the values both sides held after the last sync; a field absent was never synced. */
export type LastSyncedState = Readonly<Record<string, FieldFingerprint>>

/** What one side holds now, as read this round. */
export interface SideSnapshot {
  /** Mapped fields by name; one missing here is empty (Marketo leaves empty fields out, marketo-rest-and-ssfs.md §2.2). */
  readonly values: FieldValues
  /**
   * The record was last modified by the service itself (Dataverse: `modifiedby` is our application
   * user, WhoAmI; Marketo: the change came through our API user). It only names a silent field
   * 'echo' for the operator: whether a value flows is decided by the value alone, since a record
   * the service wrote may have been edited again since, by a person or another integration.
   */
  readonly lastModifiedByService?: boolean
}

export interface FieldMergeInput {
  /** Picks the collision winner: Marketo for a lead, Dynamics for a contact (marketo-native-dynamics-sync.md §2). */
  readonly recordType: RecordType
  /** The mapped fields of this record type, by Marketo field name; state for any other field is dropped. */
  readonly fields: readonly string[]
  readonly lastSynced: LastSyncedState
  /** Undefined when this side was not read this round. */
  readonly marketo: SideSnapshot | undefined
  readonly dynamics: SideSnapshot | undefined
  /** This pair's fingerprinter (field-fingerprint.ts), keyed with the service's secret. */
  readonly fingerprint: FieldFingerprinter
}

/**
 * Why a field did, or did not, move this round — the answer to "why did this person not sync?".
 * - `unchanged`: neither side read differs from the last-synced state.
 * - `echo`: as `unchanged`, on a side the service itself last modified: its own write coming back.
 * - `not-read`: neither side was read this round.
 * - `to-dynamics` / `to-marketo`: changed on one side only, written to the other.
 * - `collision-marketo-won` / `collision-dynamics-won`: changed on both sides to different values;
 *   the winner's value is written over the loser's edit.
 * - `converged`: changed on both sides to the same value (or our write landed and the state was not
 *   saved): nothing to write, the state moves on.
 * - `deferred-until-read`: changed on the side that would lose a collision while the other side was
 *   not read; writing it blind could overwrite the winner's edit, so nothing moves until both are read.
 */
export type FieldDecision =
  | 'unchanged' | 'echo' | 'not-read'
  | 'to-dynamics' | 'to-marketo'
  | 'collision-marketo-won' | 'collision-dynamics-won'
  | 'converged' | 'deferred-until-read'

/** A value to write: empty is `null`, for the writer to turn into each API's way of clearing a field. */
export type WritableFieldValue = Exclude<FieldValue, undefined>

export interface FieldMergeResult {
  /** Per side, only the fields whose value there differs from the merged one (diff before write). */
  readonly writes: { readonly marketo: Record<string, WritableFieldValue>, readonly dynamics: Record<string, WritableFieldValue> }
  /** The state to save once the writes are applied. */
  readonly lastSynced: Record<string, FieldFingerprint>
  readonly decisions: Record<string, FieldDecision>
}

/** "Marketo will win for people (leads) and Dynamics will win for contacts." (marketo-native-dynamics-sync.md §2) */
export function collisionWinner (recordType: RecordType): SyncSide {
  return recordType === 'Lead' ? 'marketo' : 'dynamics'
}

/** One side's view of one field this round. */
interface FieldRead {
  readonly known: boolean
  readonly value: FieldValue
  readonly changed: boolean
  readonly byService: boolean
}

export function mergeFieldChanges (input: FieldMergeInput): FieldMergeResult {
  const winner = collisionWinner(input.recordType)
  const result: FieldMergeResult = { writes: { marketo: {}, dynamics: {} }, lastSynced: {}, decisions: {} }
  for (const field of input.fields) {
    const base = Object.hasOwn(input.lastSynced, field) ? input.lastSynced[field] : undefined
    const marketo = readField(input.marketo, field, base, input.fingerprint)
    const dynamics = readField(input.dynamics, field, base, input.fingerprint)
    const outcome = decideField(marketo, dynamics, winner, base === undefined)
    result.decisions[field] = outcome.decision
    if (outcome.merged === undefined) {
      if (base !== undefined) result.lastSynced[field] = base
      continue
    }
    result.lastSynced[field] = input.fingerprint(field, outcome.merged.value)
    if (outcome.merged.writeTo !== undefined) result.writes[outcome.merged.writeTo][field] = writableFieldValue(outcome.merged.value)
  }
  return result
}

/**
 * A side's value is a change when it differs from the last-synced state. A field never synced
 * (a new link) has no state: there a non-empty value is a change and an empty one is not, so a
 * first sync fills the gaps on each side and never blanks a value with the other side's nothing.
 */
function readField (side: SideSnapshot | undefined, field: string, base: FieldFingerprint | undefined, fingerprint: FieldFingerprinter): FieldRead {
  if (side === undefined) return { known: false, value: undefined, changed: false, byService: false }
  const value = Object.hasOwn(side.values, field) ? side.values[field] : undefined
  const changed = base === undefined ? canonicalFieldValue(value) !== null : fingerprint(field, value) !== base
  return { known: true, value, changed, byService: side.lastModifiedByService === true }
}

interface FieldOutcome {
  readonly decision: FieldDecision
  /** The value both sides hold once the write (if any) is applied; undefined leaves the state as it was. */
  readonly merged?: { readonly value: FieldValue, readonly writeTo?: SyncSide }
}

function decideField (marketo: FieldRead, dynamics: FieldRead, winner: SyncSide, neverSynced: boolean): FieldOutcome {
  if (!marketo.known && !dynamics.known) return { decision: 'not-read' }
  if (marketo.changed && dynamics.changed) {
    if (canonicalFieldValue(marketo.value) === canonicalFieldValue(dynamics.value)) {
      return { decision: 'converged', merged: { value: marketo.value } }
    }
    return winner === 'marketo'
      ? { decision: 'collision-marketo-won', merged: { value: marketo.value, writeTo: 'dynamics' } }
      : { decision: 'collision-dynamics-won', merged: { value: dynamics.value, writeTo: 'marketo' } }
  }
  if (marketo.changed) return oneSideChanged(marketo, 'marketo', dynamics, winner)
  if (dynamics.changed) return oneSideChanged(dynamics, 'dynamics', marketo, winner)
  const echo = (marketo.known && marketo.byService) || (dynamics.known && dynamics.byService)
  // A new link whose field is empty on both sides read: record that empty state, so a later edit is seen as one.
  const emptyOnBoth = neverSynced && marketo.known && dynamics.known
  return { decision: echo ? 'echo' : 'unchanged', ...(emptyOnBoth ? { merged: { value: null } } : {}) }
}

function oneSideChanged (changed: FieldRead, from: SyncSide, other: FieldRead, winner: SyncSide): FieldOutcome {
  const to: SyncSide = from === 'marketo' ? 'dynamics' : 'marketo'
  // The other side unread may hold an edit of its own; only the collision winner may be written over it unseen.
  if (!other.known && from !== winner) return { decision: 'deferred-until-read' }
  return { decision: to === 'dynamics' ? 'to-dynamics' : 'to-marketo', merged: { value: changed.value, writeTo: to } }
}
