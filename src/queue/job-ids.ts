import { createHash } from 'node:crypto'

/**
 * Job ids give idempotency: a retried invocation (same one-time token, same campaign run) maps
 * to the same id, and BullMQ does not add a job whose id it still holds. BullMQ ids must not
 * contain ':' and must not be all digits, hence the prefix and hex digest.
 */
export function invocationIdFor (parts: { campaignId: number; batchid?: string; token?: string; body: unknown }): string {
  const hash = createHash('sha256')
  if (parts.token !== undefined) {
    hash.update(`token\u0000${parts.campaignId}\u0000${parts.batchid ?? ''}\u0000${parts.token}`)
  } else {
    // No token: the only identity an invocation has is its content.
    hash.update(`body\u0000${JSON.stringify(parts.body)}`)
  }
  return `inv-${hash.digest('hex').slice(0, 40)}`
}

export const flowStepJobId = (invocationId: string) => `flow-step-${invocationId}`
export const flowCallbackJobId = (invocationId: string) => `callback-${invocationId}`
