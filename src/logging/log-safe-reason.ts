/**
 * Dynamics' (or Marketo's) message about a refused record, made fit for a log line. Such a message
 * may quote the value it refused ("… 'Smith-Jones …' exceeds …", "Duplicate value 'ann@…'"), and a
 * value is personal data, which never reaches a log (README: logs). The full message still goes to
 * the person's Marketo activity log, where it belongs; the log keeps what an operator needs to
 * find the cause: the error code (logged beside it) and the sentence with every value taken out.
 *
 * What is replaced, and why:
 * - anything quoted ('…', "…", ‘…’, “…”) → `'<value>'`: Dataverse quotes the refused value as
 *   it quotes column names. Quoted column and table names the caller knows (`keep`: the logical
 *   names it writes) and small numbers (a length limit such as '100') stay, because they say what
 *   to fix and identify nobody;
 * - email addresses → `<email>`, quoted or not;
 * - runs of 4 or more digits → `<digits>`: phone numbers, postcodes, account numbers; 1–3 digits
 *   (counts, limits, HTTP statuses) stay;
 * - record ids (GUIDs) and Dataverse's hex codes (`0x80040203`) stay as they are: ids, not data.
 */
const TOKEN = new RegExp([
  String.raw`(?<guid>\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b)`,
  String.raw`(?<hex>\b0x[0-9a-f]+\b)`,
  String.raw`(?<quoted>'[^']*'|"[^"]*"|‘[^’]*’|“[^”]*”)`,
  String.raw`(?<email>[^\s'"‘“<>()]+@[^\s'"’”<>()]+)`,
  String.raw`(?<digits>\d{4,})`
].join('|'), 'giu')

const SMALL_NUMBER = /^\d{1,3}$/u

export function logSafeReason (message: string, keep: ReadonlySet<string> = new Set()): string {
  return message.replace(TOKEN, (match, ...rest: unknown[]) => {
    const groups = rest.at(-1) as Record<string, string | undefined>
    if (groups.guid !== undefined || groups.hex !== undefined) return match
    if (groups.email !== undefined) return '<email>'
    if (groups.digits !== undefined) return '<digits>'
    const inner = match.slice(1, -1)
    if (keep.has(inner) || SMALL_NUMBER.test(inner)) return match
    return `${match[0]!}<value>${match.at(-1)!}`
  })
}
