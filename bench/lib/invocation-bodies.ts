/**
 * Distinct `/submitAsyncAction` bodies, as Marketo sends them: every call its own one-time token
 * and its own persons (ids and emails never repeat within a process), so the service can neither
 * de-duplicate the work away nor find a lead that already exists. Built by string templates rather
 * than JSON.stringify because at the maximum rate the load generator shares the machine's cores
 * with the service it measures.
 */
export interface InvocationBodyOptions {
  readonly callbackUrl: string
  readonly persons: number
  /** A trigger campaign (carries a triggering context): one person, higher queue priority. */
  readonly trigger?: boolean
  /** Distinguishes runs sharing one Redis (ids and tokens stay unique across them). */
  readonly runTag?: string
}

export function createInvocationBodies (options: InvocationBodyOptions): { next (): { body: string, token: string, firstPersonId: number } } {
  const tag = options.runTag ?? Math.random().toString(36).slice(2, 8)
  let sequence = 0
  let personId = 1 + Math.floor(Math.random() * 1e9)
  const triggering = options.trigger === true ? ',"triggeringContext":{"name":"Contact Us","triggerName":"Fills Out Form"}' : ''
  const head = `"apiCallBackKey":"bench-callback-key","campaignId":4242,"callbackUrl":${JSON.stringify(options.callbackUrl)},` +
    '"context":{"subscription":{"munchkinId":"123-ABC-456"},"campaign":{"id":4242,"name":"Bench"}},"objectData":['
  return {
    next () {
      sequence += 1
      const token = `bench-${tag}-${sequence}`
      const firstPersonId = personId
      let objects = ''
      for (let i = 0; i < options.persons; i++) {
        const id = personId++
        objects += `${i === 0 ? '' : ','}{"objectType":"lead","objectContext":{"id":${id},"email":"p${id}.${tag}@bench.example.com",` +
          `"firstName":"Bench","lastName":"Person ${id}","company":"Bench ${tag}","title":"Tester"},"flowStepContext":{"syncAs":"Lead"}${triggering}}`
      }
      return { body: `{"token":"${token}","batchid":"bench-${tag}",${head}${objects}]}`, token, firstPersonId }
    }
  }
}
