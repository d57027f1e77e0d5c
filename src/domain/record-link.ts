import type { RecordType } from './record-type.ts'

/**
 * Which Dynamics record a Marketo person is. The native sync identifies people by CRM record id,
 * not by email (reference marketo-native-dynamics-sync.md §4), and so do the flow step and the
 * background sync; src/links/record-link-store.ts keeps these in Redis.
 */
export interface RecordLink {
  readonly type: RecordType
  readonly id: string
}
