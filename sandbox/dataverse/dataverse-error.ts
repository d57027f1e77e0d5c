/**
 * A refusal the emulator answers with Dataverse's error envelope
 * `{"error":{"code":"0x…","message":"…"}}` (reference doc §6). dynamics-web-api copies `code` and
 * `message` onto the rejected Error together with `status` and `headers` (§9.4).
 */
export class DataverseError extends Error {
  readonly code: string
  constructor (
    readonly status: number,
    code: string,
    message: string,
    readonly headers: Readonly<Record<string, string>> = {}
  ) {
    super(message)
    this.name = 'DataverseError'
    this.code = code
  }

  toBody (): { error: { code: string, message: string } } {
    return { error: { code: this.code, message: this.message } }
  }
}

/** `lead With Id = <id> Does Not Exist`, 0x80040217 ObjectDoesNotExist (§1.4). */
export function recordNotFound (logicalName: string, id: string): DataverseError {
  return new DataverseError(404, '0x80040217', `${logicalName} With Id = ${id} Does Not Exist`)
}

/** Unknown property in a payload: 400 with code `0x0` (§1.1, SUP web-api-client-errors.md). */
export function invalidProperty (property: string, logicalName: string): DataverseError {
  return new DataverseError(400, '0x0',
    `An error occurred while validating input parameters: Microsoft.OData.ODataException: Invalid property '${property}' was found in entity 'Microsoft.Dynamics.CRM.${logicalName}'.`)
}

/** Unknown property in `$select`/`$filter`/`$orderby` (§1.1). */
export function unknownQueryProperty (property: string, logicalName: string): DataverseError {
  return new DataverseError(400, '0x0', `Could not find a property named '${property}' on type 'Microsoft.Dynamics.CRM.${logicalName}'.`)
}

/** String longer than the column's MaxLength: 0x80044331 (§6). */
export function valueTooLong (column: string, logicalName: string, maxLength: number): DataverseError {
  return new DataverseError(400, '0x80044331',
    `A validation error occurred. The length of the '${column}' attribute of the '${logicalName}' entity exceeded the maximum allowed length of '${maxLength}'.`)
}

/**
 * A required column missing or emptied. The Web API only enforces SystemRequired columns (§6) and
 * the docs show no sample of the failure, so the emulator's choice is the generic
 * InvalidArgument code 0x80040203 (data-service-errors.md) with a message naming table and column.
 */
export function requiredValueMissing (column: string, logicalName: string): DataverseError {
  return new DataverseError(400, '0x80040203',
    `A validation error occurred. The value of the '${column}' attribute of the '${logicalName}' entity is required and cannot be null or empty.`)
}

/** Bad `@odata.bind` (unknown navigation property, unknown target row): 0x80048d19 (§6). */
export function invalidPayload (entitySet: string, detail: string): DataverseError {
  return new DataverseError(400, '0x80048d19',
    `Error identified in Payload provided by the user for Entity :'${entitySet}', For more information on this error please follow this help link https://go.microsoft.com/fwlink/?linkid=2195293  ----> InnerException : ${detail}`)
}

export function wrongValueType (column: string, expectedEdmType: string, value: unknown): DataverseError {
  return new DataverseError(400, '0x0',
    `Cannot convert the literal '${String(value)}' to the expected type '${expectedEdmType}' for the property '${column}'.`)
}

/** Stale `If-Match` etag: 412 ConcurrencyVersionMismatch (§1.8; hex from third-party constants). */
export function versionMismatch (): DataverseError {
  return new DataverseError(412, '0x80060882', "The version of the existing record doesn't match the RowVersion property provided.")
}

/** `If-None-Match: *` on an existing row, or a create with an existing key (§1.6). 0x80040237 DuplicateRecord. */
export function recordAlreadyExists (): DataverseError {
  return new DataverseError(412, '0x80040237', 'A record with matching key values already exists.')
}

export function resourceNotFound (segment: string): DataverseError {
  return new DataverseError(404, '0x8006088a', `Resource not found for the segment '${segment}'.`)
}

export function queryError (message: string): DataverseError {
  return new DataverseError(400, '0x0', message)
}

/** Service protection, number-of-requests limit (§5). */
export function requestLimitExceeded (retryAfterSeconds: number): DataverseError {
  return new DataverseError(429, '0x80072322', 'Number of requests exceeded the limit of 6000 over time window of 300 seconds.', {
    'Retry-After': String(retryAfterSeconds)
  })
}

/** An injected server failure; 0x80040216 is Dataverse's "An unexpected error occurred." */
export function injectedFailure (status: number): DataverseError {
  return new DataverseError(status, '0x80040216', 'An unexpected error occurred.')
}
