import { createCipheriv, createDecipheriv, hkdfSync, randomFillSync } from 'node:crypto'

/**
 * AES-256-GCM for secrets that must pass through Redis (Marketo's callback token and key travel
 * from the API to a worker inside BullMQ job data, which Redis stores in clear). The key is
 * derived from a secret both processes already hold, so ops manage no extra key.
 */
export interface SealedBox {
  seal (plaintext: string): string
  open (sealed: string): string
}

export class SealedBoxError extends Error {
  readonly code = 'SEALED_BOX_INVALID'
  constructor () {
    super('sealed value cannot be opened (tampered, or sealed with another key)')
    this.name = 'SealedBoxError'
  }
}

const IV_BYTES = 12
/** Random IVs drawn from a pool filled in one call: the API seals once per invocation. */
const IV_POOL_SIZE = 256

export function createSealedBox (secret: string, purpose: string): SealedBox {
  const key = Buffer.from(hkdfSync('sha256', secret, 'marketo-dynamics-sync', purpose, 32))
  const ivPool = Buffer.alloc(IV_BYTES * IV_POOL_SIZE)
  let ivsLeft = 0
  // GCM needs an IV never used twice with a key; 96 random bits each (NIST SP 800-38D §8.2.2).
  const nextIv = (): Buffer => {
    if (ivsLeft === 0) {
      randomFillSync(ivPool)
      ivsLeft = IV_POOL_SIZE
    }
    ivsLeft--
    return ivPool.subarray(ivsLeft * IV_BYTES, (ivsLeft + 1) * IV_BYTES)
  }
  return {
    seal (plaintext) {
      const iv = nextIv()
      const cipher = createCipheriv('aes-256-gcm', key, iv)
      const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()])
      return ['v1', iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), body.toString('base64url')].join('.')
    },
    open (sealed) {
      const [version, iv, tag, body] = sealed.split('.')
      if (version !== 'v1' || iv === undefined || tag === undefined || body === undefined) throw new SealedBoxError()
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'))
        decipher.setAuthTag(Buffer.from(tag, 'base64url'))
        return Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]).toString('utf8')
      } catch {
        throw new SealedBoxError()
      }
    }
  }
}
