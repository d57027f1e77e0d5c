import { Type, type Static } from 'typebox'

/** The one JSON shape every error response of this service has (4xx and 5xx alike). */
export const ErrorResponse = Type.Object({
  statusCode: Type.Integer({ description: 'HTTP status, repeated for clients that only see the body' }),
  code: Type.String({ description: 'Stable machine-readable error code, e.g. FST_ERR_VALIDATION, UNAUTHORIZED' }),
  error: Type.String({ description: 'HTTP reason phrase' }),
  message: Type.String({ description: 'What is wrong, for a human' })
}, { $id: 'ErrorResponse', title: 'Error' })
export type ErrorResponse = Static<typeof ErrorResponse>

/** Reused by the SSFS document and fastify's own schemas. */
export const I18nString = Type.Object({ en_US: Type.String() }, { additionalProperties: Type.String() })
