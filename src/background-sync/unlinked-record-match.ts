/**
 * Which Marketo person a Dynamics record that is not linked yet becomes (issue 12 §3). The native
 * sync creates a second person when a new Dynamics record's email already belongs to a Marketo
 * person (marketo-native-dynamics-sync.md); ours links to that person when exactly one unlinked
 * person has the email, and creates nothing when the match is ambiguous or taken, so an operator
 * decides instead of the sync merging two people.
 *
 * Pure: the caller reads the persons with the record's email and which of them are linked.
 */

export interface EmailCandidate {
  readonly marketoId: number
  /** Linked to another Dynamics record already: taking it over would leave that record without its person. */
  readonly linked: boolean
}

/** Why a record was reported and not synced; codes only, the operator looks the record up by id. */
export type UnlinkedRecordReason = 'SEVERAL_UNLINKED_PERSONS' | 'PERSON_LINKED_ELSEWHERE'

export type UnlinkedRecordMatch =
  | { readonly action: 'create' }
  | { readonly action: 'link', readonly marketoId: number }
  | { readonly action: 'report', readonly reason: UnlinkedRecordReason, readonly marketoIds: readonly number[] }

export function matchUnlinkedRecord (candidates: readonly EmailCandidate[]): UnlinkedRecordMatch {
  if (candidates.length === 0) return { action: 'create' }
  const unlinked = candidates.filter((candidate) => !candidate.linked)
  const marketoIds = candidates.map((candidate) => candidate.marketoId)
  if (unlinked.length === 1) return { action: 'link', marketoId: unlinked[0]!.marketoId }
  if (unlinked.length === 0) return { action: 'report', reason: 'PERSON_LINKED_ELSEWHERE', marketoIds }
  return { action: 'report', reason: 'SEVERAL_UNLINKED_PERSONS', marketoIds }
}

/** Emails compare as Marketo looks them up: case does not matter, surrounding spaces are not part of them. */
export function emailMatchKey (email: string): string {
  return email.trim().toLowerCase()
}
