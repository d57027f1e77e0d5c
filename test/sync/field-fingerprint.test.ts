import { test } from 'tap'
import {
  canonicalFieldValue, fieldFingerprinter, FingerprintKeyError, sameFieldValue, writableFieldValue
} from '../../src/sync/field-fingerprint.ts'

/** The keyed hashes that stand for a linked pair's last-synced values, and the round-trip form they hash. */

const key = Buffer.alloc(32, 7)

test('an empty field is one value whether it arrives missing, null, empty or blank', async (t) => {
  for (const empty of [undefined, null, '', '   ']) t.equal(canonicalFieldValue(empty), null, JSON.stringify(empty))
  t.ok(sameFieldValue(undefined, ''))
  t.ok(sameFieldValue(null, ' '))
})

test('text is trimmed at both ends, its case and inner spaces kept', async (t) => {
  t.ok(sameFieldValue(' Ann ', 'Ann'), 'the service trims what it writes')
  t.notOk(sameFieldValue('ann', 'Ann'), 'a corrected capital is an edit')
  t.notOk(sameFieldValue('Ann Lee', 'Ann  Lee'))
})

test('a number equals the text of its decimal form, and no other text', async (t) => {
  t.ok(sameFieldValue(42, '42'))
  t.ok(sameFieldValue(4.5, '4.5'))
  t.notOk(sameFieldValue(42, '042'), 'a phone number keeps its leading zero')
  t.notOk(sameFieldValue(42, '42.0'))
  t.equal(canonicalFieldValue(Number.NaN), null)
})

test('a boolean equals its text form', async (t) => {
  t.ok(sameFieldValue(true, 'true'))
  t.ok(sameFieldValue(false, 'false'))
  t.notOk(sameFieldValue(false, null), 'false is a value, not empty')
})

test('values are written trimmed, with null for empty', async (t) => {
  t.equal(writableFieldValue(' Ann '), 'Ann')
  t.equal(writableFieldValue('  '), null)
  t.equal(writableFieldValue(undefined), null)
  t.equal(writableFieldValue(42), 42)
  t.equal(writableFieldValue(false), false)
})

test('equal values after a round trip have equal fingerprints, different values different ones', async (t) => {
  const fingerprint = fieldFingerprinter(key, 'pair-1')
  t.equal(fingerprint('title', ' CEO'), fingerprint('title', 'CEO'))
  t.equal(fingerprint('phone', 42), fingerprint('phone', '42'))
  t.equal(fingerprint('title', undefined), fingerprint('title', ''))
  t.not(fingerprint('title', 'CEO'), fingerprint('title', 'CTO'))
  t.match(fingerprint('title', 'CEO'), /^[A-Za-z0-9_-]{22}$/, '128 bits, base64url')
})

test('a fingerprint gives away no value: not in it, not shared across fields, pairs or keys', async (t) => {
  const fingerprint = fieldFingerprinter(key, 'pair-1')
  const value = 'ann.lee@example.com'
  t.notMatch(fingerprint('email', value), /ann|example/i)
  t.not(fingerprint('firstName', 'Ann'), fingerprint('lastName', 'Ann'), 'equal fields of one person do not show')
  t.not(fingerprint('firstName', 'Ann'), fieldFingerprinter(key, 'pair-2')('firstName', 'Ann'), 'two people sharing a name do not show')
  t.not(fingerprint('firstName', 'Ann'), fieldFingerprinter(Buffer.alloc(32, 8), 'pair-1')('firstName', 'Ann'), 'without the key, no guessing')
  t.not(fingerprint('title', null), fingerprint('title', '\x00'), 'no text fingerprints as empty')
})

test('a key shorter than 32 bytes is refused with a named error', async (t) => {
  t.throws(() => fieldFingerprinter(Buffer.alloc(31), 'pair-1'), FingerprintKeyError)
  t.throws(() => fieldFingerprinter(Buffer.alloc(16), 'pair-1'), { code: 'FINGERPRINT_KEY_TOO_SHORT' })
})
