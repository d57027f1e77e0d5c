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
/**
 * Rows asked per open email in one look-up: room for a few duplicates each, so an ordinary batch
 * is settled in one request per table while no answer grows with a junk email's record count.
 */
const ROWS_PER_EMAIL = 4

/** What a look-up by email found: the oldest lead and the oldest contact with that email. */
export interface EmailMatches {
  readonly lead?: RecordLink
  readonly contact?: RecordLink
}

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
   * Leads and contacts by email (case-insensitive in Dataverse): for each email, its oldest lead
   * and its oldest contact, if any. Which of the two is the person's record is a decision of the
   * caller (flow-step/person-decisions.ts), not of the look-up.
   */
  async findByEmails (emails: readonly string[]): Promise<Map<string, EmailMatches>> {
    // Leads and contacts are asked at the same time: a trigger invocation waits for both.
    const [leads, contacts] = await Promise.all([this.#findInTable('Lead', emails), this.#findInTable('Contact', emails)])
    const matches = new Map<string, EmailMatches>()
    for (const [email, lead] of leads) matches.set(email, { lead })
    for (const [email, contact] of contacts) matches.set(email, { ...matches.get(email), contact })
    return matches
  }

  /**
   * The oldest record per email, in a number of requests bounded by the number of emails, never
   * by the number of records: a junk address such as test@test.com can sit on thousands of leads,
   * and one match is all a decision needs.
   *
   * Rows come oldest first across all emails of the filter, so the first row seen for an email is
   * its oldest. Each request asks for at most `ROWS_PER_EMAIL` rows per email still open (`$top`,
   * which Dataverse honours when no `odata.maxpagesize` is sent — reference
   * dataverse-web-api-and-msal.md §1.10) and follows no nextLink. A short answer settles every
   * email of the filter; a full one settles at least the emails it shows, and the others are asked
   * again without them — so an email on 10,000 leads costs one extra request, not two 5,000-row pages.
   */
  async #findInTable (type: RecordType, emails: readonly string[]): Promise<Map<string, RecordLink>> {
    const { entitySet, primaryKey } = TABLE[type]
    const found = new Map<string, RecordLink>()
    for (const chunk of chunks(emails, VALUES_PER_FILTER)) {
      let open = [...new Set(chunk)]
      while (open.length > 0) {
        const top = open.length * ROWS_PER_EMAIL
        const rows = await this.client.retrieveMultiple<Record<string, string | null>>(entitySet, {
          select: [primaryKey, 'emailaddress1'],
          // Several records for one email: the oldest is the person's, whichever order Dataverse pages in.
          orderBy: `createdon asc,${primaryKey} asc`,
          filter: open.map((email) => `emailaddress1 eq ${odataString(email)}`).join(' or '),
          top,
          maxRows: top
        })
        for (const row of rows) {
          // Normalised like the requested emails: Dataverse's comparison also ignores case and
          // trailing blanks, and a match keyed differently would be missed and duplicated.
          const email = normaliseEmail(row.emailaddress1)
          const id = row[primaryKey]
          if (email !== undefined && typeof id === 'string' && !found.has(email)) found.set(email, { type, id: id.toLowerCase() })
        }
        if (rows.length < top) break
        const before = open.length
        open = open.filter((email) => !found.has(email))
        // A full answer that settles no email cannot happen; if Dataverse ever gives one, asking
        // again would loop and stopping would take a partial read for "not found" (a duplicate).
        if (open.length === before) throw new IncompleteLookUpError(entitySet)
      }
    }
    return found
  }

  async create (type: RecordType, record: Record<string, string>): Promise<RecordLink> {
    const id = await this.client.create(TABLE[type].entitySet, record)
    return { type, id }
  }
}

export class IncompleteLookUpError extends Error {
  readonly code = 'DYNAMICS_LOOKUP_INCOMPLETE'
  constructor (entitySet: string) {
    super(`a look-up of ${entitySet} by email answered a full page without any email asked for`)
    this.name = 'IncompleteLookUpError'
  }
}

function * chunks<T> (items: readonly T[], size: number): Generator<T[]> {
  for (let start = 0; start < items.length; start += size) yield items.slice(start, start + size)
}
