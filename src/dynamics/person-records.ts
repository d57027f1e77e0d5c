import type { RecordLink } from '../domain/record-link.ts'
import type { RecordType } from '../domain/record-type.ts'
import { odataString, type DataverseClient } from './dataverse-client.ts'
import { normaliseEmail } from '../sync/person-field-mapping.ts'

/**
 * Leads and contacts as the flow step sees them: find by id, find by email, create. Look-ups are
 * batched into `or` filters (one request per table per chunk, not per person), because Dataverse
 * throttles per user and a 1,000-person batch campaign must not cost 2,000 requests.
 */

const TABLE: Record<RecordType, { entitySet: string; primaryKey: string }> = {
  Lead: { entitySet: 'leads', primaryKey: 'leadid' },
  Contact: { entitySet: 'contacts', primaryKey: 'contactid' }
}

/** Keeps each GET URL far below Dataverse's URL limits with room for long emails. */
const VALUES_PER_FILTER = 40

export class PersonRecords {
  constructor (private readonly client: DataverseClient) {}

  /** Which of these record ids still exist. */
  async existingIds (type: RecordType, ids: readonly string[]): Promise<Set<string>> {
    const { entitySet, primaryKey } = TABLE[type]
    const found = new Set<string>()
    for (const chunk of chunks(ids, VALUES_PER_FILTER)) {
      const rows = await this.client.retrieveMultiple<Record<string, string>>(entitySet, {
        select: [primaryKey],
        filter: chunk.map((id) => `${primaryKey} eq ${id}`).join(' or ')
      })
      for (const row of rows) if (typeof row[primaryKey] === 'string') found.add(row[primaryKey].toLowerCase())
    }
    return found
  }

  /**
   * Leads and contacts by email (case-insensitive in Dataverse). When an email has both, the
   * contact is the person's record: in Marketo a CRM contact always wins over a CRM lead
   * (marketo-native-dynamics-sync.md §4).
   */
  async findByEmails (emails: readonly string[]): Promise<Map<string, RecordLink>> {
    // Leads and contacts are asked at the same time: a trigger invocation waits for both.
    const [leads, contacts] = await Promise.all([this.#findInTable('Lead', emails), this.#findInTable('Contact', emails)])
    // Contacts second, so they win where an email has both.
    return new Map([...leads, ...contacts])
  }

  async #findInTable (type: RecordType, emails: readonly string[]): Promise<Map<string, RecordLink>> {
    const { entitySet, primaryKey } = TABLE[type]
    const found = new Map<string, RecordLink>()
    for (const chunk of chunks(emails, VALUES_PER_FILTER)) {
      const rows = await this.client.retrieveMultiple<Record<string, string | null>>(entitySet, {
        select: [primaryKey, 'emailaddress1'],
        // Several records for one email: the oldest is the person's, whichever order Dataverse pages in.
        orderBy: 'createdon asc',
        filter: chunk.map((email) => `emailaddress1 eq ${odataString(email)}`).join(' or ')
      })
      for (const row of rows) {
        // Normalised like the requested emails: Dataverse's comparison also ignores case and
        // trailing blanks, and a match keyed differently would be missed and duplicated.
        const email = normaliseEmail(row.emailaddress1)
        const id = row[primaryKey]
        if (email !== undefined && typeof id === 'string' && !found.has(email)) found.set(email, { type, id: id.toLowerCase() })
      }
    }
    return found
  }

  async create (type: RecordType, record: Record<string, string>): Promise<RecordLink> {
    const id = await this.client.create(TABLE[type].entitySet, record)
    return { type, id }
  }
}

function * chunks<T> (items: readonly T[], size: number): Generator<T[]> {
  for (let start = 0; start < items.length; start += size) yield items.slice(start, start + size)
}
