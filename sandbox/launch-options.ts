import { createServer } from 'node:net'
import { once } from 'node:events'

/**
 * The launcher's own knobs (not the service's configuration, which `startSandbox` hands out as
 * `env`). Defaults are fixed ports so the printed URLs stay the same from one run to the next;
 * a default port that is taken falls back to one the OS chooses, while a port the user asked
 * for explicitly is used as given (a clash then fails loudly instead of moving silently).
 *
 *   REDIS_URL               use this Redis instead of starting a redis-server
 *   PORT                    the API (default 3000)
 *   SANDBOX_MARKETO_PORT    the Marketo emulator (default 4100; 0 = any free port)
 *   SANDBOX_DATAVERSE_PORT  the Dataverse emulator (default 4200; 0 = any free port)
 *   SANDBOX_AZURE_AD_PORT   the Azure AD emulator (default 4300; 0 = any free port)
 */

export const DEFAULT_SANDBOX_PORTS = { api: 3000, marketo: 4100, dataverse: 4200, azureAd: 4300 } as const

export interface LauncherEnv {
  readonly REDIS_URL?: string
  readonly PORT?: string
  readonly SANDBOX_MARKETO_PORT?: string
  readonly SANDBOX_DATAVERSE_PORT?: string
  readonly SANDBOX_AZURE_AD_PORT?: string
}

export interface LaunchOptions {
  readonly redisUrl?: string
  /** Undefined: any free port (startSandbox picks one). */
  readonly apiPort?: number
  /** 0: the OS chooses. */
  readonly ports: { readonly marketo: number, readonly dataverse: number, readonly azureAd: number }
}

export class LaunchOptionError extends Error {
  readonly code = 'SANDBOX_LAUNCH_OPTION_INVALID'
  constructor (message: string) {
    super(message)
    this.name = 'LaunchOptionError'
  }
}

export async function resolveLaunchOptions (env: LauncherEnv): Promise<LaunchOptions> {
  const redisUrl = env.REDIS_URL?.trim()
  const apiPort = await choosePort('PORT', env.PORT, DEFAULT_SANDBOX_PORTS.api)
  return {
    ...(redisUrl === undefined || redisUrl === '' ? {} : { redisUrl }),
    ...(apiPort === 0 ? {} : { apiPort }),
    ports: {
      marketo: await choosePort('SANDBOX_MARKETO_PORT', env.SANDBOX_MARKETO_PORT, DEFAULT_SANDBOX_PORTS.marketo),
      dataverse: await choosePort('SANDBOX_DATAVERSE_PORT', env.SANDBOX_DATAVERSE_PORT, DEFAULT_SANDBOX_PORTS.dataverse),
      azureAd: await choosePort('SANDBOX_AZURE_AD_PORT', env.SANDBOX_AZURE_AD_PORT, DEFAULT_SANDBOX_PORTS.azureAd)
    }
  }
}

async function choosePort (name: string, raw: string | undefined, fallback: number): Promise<number> {
  const given = raw?.trim()
  if (given !== undefined && given !== '') {
    const port = Number(given)
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new LaunchOptionError(`${name} must be a port number from 0 to 65535, got "${given}"`)
    return port
  }
  return await isPortFree(fallback) ? fallback : 0
}

/** Probes by listening: the emulators bind 127.0.0.1, and a wildcard listener elsewhere blocks that too. */
async function isPortFree (port: number): Promise<boolean> {
  const probe = createServer()
  probe.listen(port, '127.0.0.1')
  try {
    await once(probe, 'listening')
  } catch {
    return false
  }
  probe.close()
  await once(probe, 'close')
  return true
}
