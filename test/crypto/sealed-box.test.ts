import t from 'tap'
import { createSealedBox, SealedBoxError } from '../../src/crypto/sealed-box.ts'

t.test('sealed values open with the same secret only, and do not show the plaintext', async (t) => {
  const box = createSealedBox('secret-one-long-enough', 'callback-credentials')
  const sealed = box.seal('{"token":"tok-123"}')
  t.notMatch(sealed, /tok-123/)
  t.equal(box.open(sealed), '{"token":"tok-123"}')
  t.throws(() => createSealedBox('another-secret-entirely', 'callback-credentials').open(sealed), SealedBoxError)
  t.throws(() => box.open(sealed.slice(0, -2) + 'AA'), SealedBoxError, 'tampering is detected')
  t.throws(() => box.open('garbage'), SealedBoxError)
})
