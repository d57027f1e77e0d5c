/**
 * Errors the Marketo emulator raises to its caller (tests, the sandbox launcher). Protocol-level
 * refusals (REST 6xx envelopes, callback 4xx) are HTTP answers, not exceptions; these are for
 * misuse of the emulator's own API.
 */

export class MarketoEmulatorError extends Error {
  constructor (readonly code: string, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = new.target.name
  }
}

/** installService could not read, verify or understand the SSFS service (reference §1.1, §1.9). */
export class ServiceInstallError extends MarketoEmulatorError {
  constructor (readonly reason: 'OPENAPI_UNREADABLE' | 'STATUS_CHECK_FAILED' | 'SERVICE_DEFINITION_INVALID', message: string, options?: { cause?: unknown }) {
    super(`SERVICE_INSTALL_${reason}`, message, options)
  }
}

export class UnknownPersonError extends MarketoEmulatorError {
  constructor (readonly personId: number) {
    super('UNKNOWN_PERSON', `no person with id ${personId}`)
  }
}

export class NoServiceInstalledError extends MarketoEmulatorError {
  constructor () {
    super('NO_SERVICE_INSTALLED', 'no SSFS service is installed; call installService first')
  }
}

export class CallbackWaitTimeoutError extends MarketoEmulatorError {
  constructor (readonly token: string, readonly timeoutMs: number) {
    super('CALLBACK_WAIT_TIMEOUT', `no accepted callback for invocation token ${token} within ${timeoutMs} ms`)
  }
}

export class EmulatorClosedError extends MarketoEmulatorError {
  constructor () {
    super('EMULATOR_CLOSED', 'the Marketo emulator was closed')
  }
}
