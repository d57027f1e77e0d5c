import { fileURLToPath } from 'node:url'
import { ensureSandboxTls } from './tls.ts'

/**
 * `npm run pretest`: make sure `.sandbox/tls/` holds a valid CA + server certificate before tap
 * starts with `NODE_EXTRA_CA_CERTS=.sandbox/tls/ca.pem` (Node reads that file once, at process start).
 * Silent on success.
 */
const tlsDir = fileURLToPath(new URL('../.sandbox/tls/', import.meta.url))

try {
  await ensureSandboxTls(tlsDir)
} catch (error) {
  process.stderr.write(`sandbox TLS: ${(error as Error).message}\n`)
  process.exitCode = 1
}
