import { hash } from 'node:crypto'

/**
 * Job ids give idempotency: a retried invocation (same one-time token, same campaign run) maps
 * to the same id, and BullMQ does not add a job whose id it still holds. BullMQ ids must not
 * contain ':' and must not be all digits, hence the prefix and hex digest.
 */
export function invocationIdFor (parts: { campaignId: number; batchid?: string; token: string }): string {
  // Every accepted invocation has a token (one without is refused with a 400: it could never be called back).
  const identity = `token\u0000${parts.campaignId}\u0000${parts.batchid ?? ''}\u0000${parts.token}`
  return `inv-${hash('sha256', identity, 'hex').slice(0, 40)}`
}

export const flowStepJobId = (invocationId: string) => `flow-step-${invocationId}`
export const flowCallbackJobId = (invocationId: string) => `callback-${invocationId}`
