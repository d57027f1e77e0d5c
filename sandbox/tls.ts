import { X509Certificate, createPrivateKey } from 'node:crypto'
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { generate } from 'selfsigned'

/**
 * The sandbox's TLS material: a private CA and a server certificate it signed for the loopback
 * names. The Azure AD emulator must speak HTTPS because MSAL refuses `http:` authorities
 * (reference doc §8.1, `authority_uri_insecure`); test processes trust the CA the ordinary Node way,
 * `NODE_EXTRA_CA_CERTS=<dir>/ca.pem`, so certificate verification stays on everywhere.
 */
export interface SandboxTls {
  readonly caCertPem: string
  /** Absolute path of `ca.pem`, the value for NODE_EXTRA_CA_CERTS. */
  readonly caPath: string
  readonly certPem: string
  readonly keyPem: string
}

const CA_FILE = 'ca.pem'
const CERT_FILE = 'server-cert.pem'
const KEY_FILE = 'server-key.pem'
/** The CA key is kept beside the CA so a later server certificate could be re-issued under the same trust root. */
const CA_KEY_FILE = 'ca-key.pem'

const DNS_NAMES = ['localhost']
const IP_ADDRESSES = ['127.0.0.1', '::1']

const DAY_MS = 24 * 60 * 60 * 1000
/** Reuse while more than a day is left, so a long test run never straddles an expiry. */
const MIN_REMAINING_MS = DAY_MS
const VALIDITY_DAYS = 825

export class SandboxTlsError extends Error {
  readonly code = 'SANDBOX_TLS_FAILED'
  constructor (message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'SandboxTlsError'
  }
}

export async function ensureSandboxTls (dir: string): Promise<SandboxTls> {
  const existing = await readReusableTls(dir)
  if (existing !== undefined) return existing
  return await generateSandboxTls(dir)
}

async function readReusableTls (dir: string): Promise<SandboxTls | undefined> {
  let caCertPem: string, certPem: string, keyPem: string
  try {
    [caCertPem, certPem, keyPem] = await Promise.all([
      readFile(join(dir, CA_FILE), 'utf8'),
      readFile(join(dir, CERT_FILE), 'utf8'),
      readFile(join(dir, KEY_FILE), 'utf8')
    ])
  } catch {
    return undefined
  }
  try {
    const ca = new X509Certificate(caCertPem)
    const cert = new X509Certificate(certPem)
    const deadline = Date.now() + MIN_REMAINING_MS
    if (Date.parse(ca.validTo) <= deadline || Date.parse(cert.validTo) <= deadline) return undefined
    if (Date.parse(cert.validFrom) > Date.now()) return undefined
    if (!ca.ca || !cert.verify(ca.publicKey)) return undefined
    if (!cert.checkPrivateKey(createPrivateKey(keyPem))) return undefined
    if (!coversLoopbackNames(cert)) return undefined
  } catch {
    // Unparseable files are treated like missing ones: regenerate.
    return undefined
  }
  return { caCertPem, caPath: join(dir, CA_FILE), certPem, keyPem }
}

function coversLoopbackNames (cert: X509Certificate): boolean {
  return DNS_NAMES.every((name) => cert.checkHost(name) !== undefined) &&
    IP_ADDRESSES.every((ip) => cert.checkIP(ip) !== undefined)
}

async function generateSandboxTls (dir: string): Promise<SandboxTls> {
  const notBeforeDate = new Date(Date.now() - 60_000)
  const notAfterDate = new Date(notBeforeDate.getTime() + VALIDITY_DAYS * DAY_MS)
  try {
    const ca = await generate([{ name: 'commonName', value: 'marketo-dynamics-sync sandbox CA' }], {
      keySize: 2048,
      algorithm: 'sha256',
      notBeforeDate,
      notAfterDate,
      extensions: [
        { name: 'basicConstraints', cA: true, critical: true },
        { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true }
      ]
    })
    const server = await generate([{ name: 'commonName', value: 'localhost' }], {
      keySize: 2048,
      algorithm: 'sha256',
      notBeforeDate,
      notAfterDate,
      ca: { key: ca.private, cert: ca.cert },
      extensions: [
        { name: 'basicConstraints', cA: false },
        { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
        { name: 'extKeyUsage', serverAuth: true },
        {
          name: 'subjectAltName',
          altNames: [
            ...DNS_NAMES.map((value) => ({ type: 2 as const, value })),
            ...IP_ADDRESSES.map((ip) => ({ type: 7 as const, ip }))
          ]
        }
      ]
    })
    await mkdir(dir, { recursive: true })
    // Key files first and the CA last: a reader that sees the new ca.pem sees a matching pair.
    await writeAtomically(join(dir, CA_KEY_FILE), ca.private, 0o600)
    await writeAtomically(join(dir, KEY_FILE), server.private, 0o600)
    await writeAtomically(join(dir, CERT_FILE), server.cert, 0o644)
    await writeAtomically(join(dir, CA_FILE), ca.cert, 0o644)
    return { caCertPem: ca.cert, caPath: join(dir, CA_FILE), certPem: server.cert, keyPem: server.private }
  } catch (error) {
    throw new SandboxTlsError(`could not create the sandbox TLS material in ${dir}: ${(error as Error).message}`, { cause: error })
  }
}

/** Parallel test processes may call this at once; rename keeps each file whole. */
async function writeAtomically (path: string, content: string, mode: number): Promise<void> {
  const temporary = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`
  await writeFile(temporary, content, { mode })
  await rename(temporary, path)
}
