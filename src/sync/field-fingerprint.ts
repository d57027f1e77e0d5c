import { createHmac } from 'node:crypto'

/**
 * The last-synced state of a linked pair keeps, per mapped field, a keyed hash of the value both
 * sides held after the last sync — never the value: Redis then holds no personal data, only
 * enough to tell "changed since" from "the same" (issue 12 §5; sync-engines.md §6 "state per
 * linked pair"). Pure: HMAC-SHA256 and string handling, no I/O, no clock.
 */

/** A mapped field's value as either side hands it to us (Marketo REST JSON, Dataverse JSON). */
export type FieldValue = string | number | boolean | null | undefined

/** Field values by mapped-field name (the Marketo field name of src/sync/person-field-mapping.ts). */
export type FieldValues = Readonly<Record<string, FieldValue>>

/** A keyed hash of one field's canonical value; equal fingerprints ⇔ equal values after a round trip. */
export type FieldFingerprint = string

/** Makes the fingerprint of one field of one linked pair. */
export type FieldFingerprinter = (field: string, value: FieldValue) => FieldFingerprint

/** The HMAC key is a secret of its own (derived by the caller, e.g. HKDF of JOB_SEALING_KEY): at least 32 bytes. */
export const FINGERPRINT_KEY_MIN_BYTES = 32

/**
 * 128 bits of the HMAC are kept: only equality within one field of one pair is ever asked, so a
 * collision needs 2^64 values of that field; half the bytes halve Redis memory per linked pair
 * (issue 12 §14 measures it).
 */
const FINGERPRINT_BYTES = 16

export class FingerprintKeyError extends Error {
  readonly code = 'FINGERPRINT_KEY_TOO_SHORT'
  constructor (bytes: number) {
    super(`the field fingerprint key has ${bytes} bytes; it needs at least ${FINGERPRINT_KEY_MIN_BYTES}`)
    this.name = 'FingerprintKeyError'
  }
}

/**
 * One value's form after a round trip through Marketo and Dataverse, or null for "empty".
 * - `undefined`, `null`, `''` and blank text are one value, empty: Marketo leaves a field with no
 *   value out of a lead it returns ("If a requested field is not returned, its value is implied to
 *   be null", marketo-rest-and-ssfs.md §2.2) or returns `null`; Dataverse returns `null` for an
 *   empty column and stores no empty string; writes send `null` for empty (writableFieldValue).
 * - Text is trimmed at both ends: the service trims what it writes (person-field-mapping.ts
 *   `toDynamicsRecord`), so "Ann " and "Ann" must not count as an edit the service itself made.
 *   Case and inner spaces are kept: "ann" → "Ann" is a person's real correction.
 * - A number and the string of its JavaScript decimal form are one value (42 and "42"): a numeric
 *   Dataverse column arrives as a JSON number where the Marketo field may arrive as text. A string
 *   that is not that exact form ("042", "42.0") stays text, so a phone number's leading zero is
 *   never lost to a numeric reading.
 * - A boolean is "true" or "false", the same as that text: both APIs send JSON booleans, and a
 *   boolean mapped to a text field on the other side must still compare equal.
 */
export function canonicalFieldValue (value: FieldValue): string | null {
  if (value === undefined || value === null) return null
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : null
  if (typeof value === 'boolean') return value ? 'true' : 'false'
  const text = value.trim()
  return text === '' ? null : text
}

/** Two values are the same after a round trip (see canonicalFieldValue). */
export function sameFieldValue (a: FieldValue, b: FieldValue): boolean {
  return canonicalFieldValue(a) === canonicalFieldValue(b)
}

/** The value as the service writes it: empty as `null` (the writer maps it to each API's "clear"), text trimmed. */
export function writableFieldValue (value: FieldValue): Exclude<FieldValue, undefined> {
  if (value === undefined || value === null) return null
  if (typeof value === 'string') return value.trim() === '' ? null : value.trim()
  if (typeof value === 'number' && !Number.isFinite(value)) return null
  return value
}

/**
 * The fingerprinter of one linked pair. The pair id and the field name are inside the HMAC, so the
 * same value gives different fingerprints in two pairs or two fields: whoever reads Redis cannot
 * tell which people share a name, nor which fields of one person are equal. Empty and text are
 * told apart by a tag byte, so no text can fingerprint as empty.
 */
export function fieldFingerprinter (key: Uint8Array, pairId: string): FieldFingerprinter {
  if (key.byteLength < FINGERPRINT_KEY_MIN_BYTES) throw new FingerprintKeyError(key.byteLength)
  return (field, value) => {
    const canonical = canonicalFieldValue(value)
    return createHmac('sha256', key)
      .update(pairId).update('\0')
      .update(field).update('\0')
      .update(canonical === null ? '\x00' : `\x01${canonical}`)
      .digest()
      .subarray(0, FINGERPRINT_BYTES)
      .toString('base64url')
  }
}
