import type { RecordType } from './record-type.ts'

/** A person's field values, by Marketo field name (src/sync/person-field-mapping.ts maps them). */
export type PersonFields = Readonly<Record<string, string | number | boolean | null | undefined>>

/** A Marketo person: its id, and the values of the fields we map (those that were sent). */
export interface Person {
  readonly marketoId: number
  readonly fields: PersonFields
}

/** A person the flow step was invoked for, with the choices the campaign made for it. */
export interface FlowStepPerson extends Person {
  /** The table to create the person in when Dynamics has no record of them. */
  readonly syncAs: RecordType
  /** Dynamics systemuserid that will own a created record. */
  readonly assignTo?: string
}
