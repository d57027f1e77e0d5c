/**
 * The two Dynamics tables a Marketo person can be: a lead, or a contact. Marketo's native sync
 * creates either (its "Sync Person to Microsoft" flow step has a *Sync As* choice, reference
 * marketo-native-dynamics-sync.md), and a person ⇄ record link names one of them.
 */
export const RECORD_TYPES = ['Lead', 'Contact'] as const
export type RecordType = typeof RECORD_TYPES[number]

export function isRecordType (value: unknown): value is RecordType {
  return RECORD_TYPES.includes(value as RecordType)
}
