import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto'

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

export function createSealedBox (secret: string, purpose: string): SealedBox {
  const key = Buffer.from(hkdfSync('sha256', secret, 'marketo-dynamics-sync', purpose, 32))
  return {
    seal (plaintext) {
      const iv = randomBytes(12)
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
