/**
 * A lead qualified into a contact in Dynamics (issue 12 §7; marketo-native-dynamics-sync.md §5
 * "Qualify", §6): Dataverse's QualifyLead creates the contact with its `originatingleadid` lookup
 * set to the lead and moves the lead to statecode 1 (Qualified). The contact then arrives on the
 * contact change feed as a new row, not linked to any person. Pure decisions only.
 */

/** How the Web API reads the contact's `originatingleadid` lookup back. */
export const ORIGINATING_LEAD_COLUMN = '_originatingleadid_value'

/** The lead a contact row was qualified from (lower-case id), when the row carries one. */
export function originatingLeadOf (columns: Readonly<Record<string, unknown>>): string | undefined {
  const id = columns[ORIGINATING_LEAD_COLUMN]
  return typeof id === 'string' && id !== '' ? id.toLowerCase() : undefined
}

export type UnlinkedContactRoute =
  /** The person the lead is linked to follows the contact from now on: no second person. */
  | { readonly kind: 'take-over-lead-person', readonly marketoId: number }
  /** Any new contact's road: matched by email, or created (the duplicate rule, unlinked-record-match.ts). */
  | { readonly kind: 'new-record' }

/**
 * The road of an unlinked contact that passed the sync filter. With §5's Qualify table (the
 * contact's own filter is applied before this, so a contact set to No is never here):
 * - lead Yes, contact Yes: the lead is linked, its person follows the contact — "The contact is synced";
 * - lead No, contact Yes: a lead that never synced has no person, the contact is a new record
 *   — "New contact record is created in Marketo". A lead that synced once and was then set to No
 *   keeps its (stale) person linked: the contact takes that person over rather than creating a
 *   second one with the same email, since duplicates are what issue 12 sets out to avoid;
 * - contact No (either lead): the contact is skipped by the filter and the lead keeps its person,
 *   which the lead's own changes (its Qualified state) go on updating — "updates lead info in
 *   Marketo but contact record is not synced", or nothing when the lead is No too.
 */
export function unlinkedContactRoute (originatingLead: string | undefined, leadPersons: ReadonlyMap<string, number>): UnlinkedContactRoute {
  const marketoId = originatingLead === undefined ? undefined : leadPersons.get(originatingLead)
  return marketoId === undefined ? { kind: 'new-record' } : { kind: 'take-over-lead-person', marketoId }
}
