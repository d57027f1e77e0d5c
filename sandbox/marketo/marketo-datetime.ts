/**
 * Marketo writes datetimes as ISO 8601 UTC without milliseconds, e.g. `2021-11-23T22:57:08Z`
 * (reference §2.2, recorded lead records [GRP]).
 */
export function toMarketoDateTime (date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z')
}

/** `Created Date` on New Lead activities is a plain date (reference §2.6, [BLOG]). */
export function toMarketoDate (date: Date): string {
  return date.toISOString().slice(0, 10)
}
