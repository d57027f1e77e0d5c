/**
 * `statecode` (Status) and `statuscode` (Status Reason) written as a pair Dataverse accepts. Marketo
 * maps Person Status → `statecode` and Status Reason → `statuscode` both ways
 * (marketo-native-dynamics-sync.md §11, "(inferred) statecode/statuscode writes need Dataverse
 * state-transition handling"), but Dataverse takes only a status that belongs to the record's
 * state: each option of the Status column's metadata names its `State` (StatusOptionMetadata), each
 * option of the State column names its `DefaultStatus` (StateOptionMetadata; learn.microsoft.com,
 * "StateOptionMetadata ComplexType"), and "when updating `statecode` also set `statuscode`"
 * (dataverse-web-api-and-msal.md §1.5). A pair that does not match is refused with
 * InvalidStateCodeStatusCode, `0x80048408` "State code is invalid or state code is valid but status
 * code is invalid for a specified state code." (Microsoft's web-service error codes; KB 923258).
 * Both columns keep these logical names on every table that has a state.
 *
 * Pure: the columns a merge decided to write, the record's current pair and the table's metadata
 * in; the columns to write, or a refusal, out.
 */

export const STATE_COLUMN = 'statecode'
export const STATUS_COLUMN = 'statuscode'

/** The code a record is refused with when Marketo holds a Status and a Status Reason that do not go together. */
export const STATE_STATUS_MISMATCH = 'STATE_STATUS_MISMATCH'

/** A table's state and status options, as their metadata relates them. */
export interface StateStatusOptions {
  /** The State column's options, each with its `DefaultStatus`. */
  readonly states: ReadonlyArray<{ readonly value: number, readonly defaultStatus: number }>
  /** The Status column's options, each with the `State` it belongs to. */
  readonly statuses: ReadonlyArray<{ readonly value: number, readonly state: number }>
}

export interface StateStatusInput {
  /** The Dataverse columns a merge decided to write, option sets as their values. */
  readonly columns: Readonly<Record<string, unknown>>
  /** The record as Dynamics holds it now; its `statecode` and `statuscode` are read. */
  readonly record: Readonly<Record<string, unknown>>
  readonly options: StateStatusOptions
}

export type StateStatusDecision =
  | { readonly columns: Record<string, unknown> }
  | { readonly refused: { readonly column: typeof STATUS_COLUMN, readonly code: typeof STATE_STATUS_MISMATCH } }

/**
 * - Neither column written, or a state written as empty (Dataverse refuses clearing its
 *   SystemRequired `statecode` itself, and that refusal is parked): the columns as they are.
 * - A new state alone (or with the status cleared): with that state's default status, unless the
 *   record's current status already belongs to it (then nothing is added).
 * - A new status alone: with the state it belongs to, when that is not the record's current state.
 * - Both: written when the status belongs to the state, refused otherwise — a guess at which of
 *   the two the marketer meant would overwrite the other's value in Dynamics.
 * A value the metadata does not know is left as it is: Dynamics refuses it with its own message.
 */
export function pairStateAndStatus (input: StateStatusInput): StateStatusDecision {
  const { columns, record, options } = input
  const writesState = Object.hasOwn(columns, STATE_COLUMN)
  const writesStatus = Object.hasOwn(columns, STATUS_COLUMN)
  if (!writesState && !writesStatus) return { columns: { ...columns } }
  const state = writesState ? columns[STATE_COLUMN] : undefined
  const status = writesStatus ? columns[STATUS_COLUMN] : undefined
  if (writesState && typeof state !== 'number') return { columns: { ...columns } }

  if (typeof state === 'number' && typeof status === 'number') {
    const stateOfStatus = stateOf(options, status)
    if (stateOfStatus === undefined || stateOfStatus === state) return { columns: { ...columns } }
    return { refused: { column: STATUS_COLUMN, code: STATE_STATUS_MISMATCH } }
  }
  if (typeof state === 'number') {
    const current = record[STATUS_COLUMN]
    if (typeof current === 'number' && stateOf(options, current) === state && !writesStatus) return { columns: { ...columns } }
    const defaultStatus = options.states.find((option) => option.value === state)?.defaultStatus
    if (defaultStatus === undefined) return { columns: { ...columns } }
    return { columns: { ...columns, [STATUS_COLUMN]: defaultStatus } }
  }
  // A status alone (a cleared one is left to Dynamics).
  if (typeof status !== 'number') return { columns: { ...columns } }
  const stateOfStatus = stateOf(options, status)
  if (stateOfStatus === undefined || stateOfStatus === record[STATE_COLUMN]) return { columns: { ...columns } }
  return { columns: { ...columns, [STATE_COLUMN]: stateOfStatus } }
}

function stateOf (options: StateStatusOptions, status: number): number | undefined {
  return options.statuses.find((option) => option.value === status)?.state
}
