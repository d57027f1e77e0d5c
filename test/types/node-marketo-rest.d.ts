/**
 * The slice of node-marketo-rest 0.7.8 (CJS, untyped) the contract tests use. Shapes follow
 * `lib/connection.js`, `lib/api/lead.js`, `lib/api/activities.js` of that version.
 */
declare module 'node-marketo-rest' {
  interface MarketoEnvelope {
    requestId: string
    success: boolean
    result?: Array<Record<string, unknown>>
    errors?: Array<{ code: string, message: string }>
    moreResult?: boolean
    nextPageToken?: string
  }

  interface MarketoOptions {
    endpoint: string
    identity: string
    clientId: string
    clientSecret: string
    partnerId?: string
    timeout?: number
    retry?: { maxRetries?: number, initialDelay?: number, maxDelay?: number }
  }

  class Marketo {
    constructor (options: MarketoOptions)
    getOAuthToken (): Promise<{ access_token: string, token_type: string, expires_in: number, scope: string }>
    lead: {
      byId (id: number, options?: { fields?: string[] }): Promise<MarketoEnvelope>
      find (filterType: string, filterValues: Array<string | number>, options?: { fields?: string[], batchSize?: number, nextPageToken?: string }): Promise<MarketoEnvelope>
      createOrUpdate (input: Array<Record<string, unknown>>, options?: { action?: string, lookupField?: string }): Promise<MarketoEnvelope>
      describe (): Promise<MarketoEnvelope>
      getPageToken (sinceDatetime: string): Promise<MarketoEnvelope>
      getActivities (leadIds: number[], activityTypeIds: number[], pageToken: string, options?: Record<string, unknown>): Promise<MarketoEnvelope & { nextPage?: () => Promise<MarketoEnvelope> }>
      getChanges (pageToken: string, options: { fields: string[], batchSize?: number }): Promise<MarketoEnvelope>
    }
    activities: {
      getActivityTypes (): Promise<MarketoEnvelope>
    }
  }

  export = Marketo
}
