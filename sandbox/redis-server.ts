import { spawn, type ChildProcess } from 'node:child_process'
import { createServer } from 'node:net'
import { once } from 'node:events'

/**
 * Starts a throw-away `redis-server` on a free loopback port, for the sandbox and the tests:
 * no persistence unless asked (`appendonly` for restart tests), `noeviction` as BullMQ requires.
 */
export interface LocalRedis {
  readonly url: string
  readonly port: number
  stop (): Promise<void>
  /**
   * A crash: SIGKILL, so Redis neither rewrites nor fsyncs its AOF on the way out (a SIGTERM's
   * clean shutdown does both), and resolves once the process is gone.
   */
  crash (): Promise<void>
  /** Last resort from a synchronous `exit` handler, for a server started in its own process group. */
  killNow (): void
}

export class RedisServerNotFoundError extends Error {
  readonly code = 'REDIS_SERVER_NOT_FOUND'
  constructor () {
    super('redis-server is not installed: `apt-get install -y redis-server` (or set REDIS_URL to a running Redis)')
    this.name = 'RedisServerNotFoundError'
  }
}

export async function freePort (): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const address = server.address()
  server.close()
  if (address === null || typeof address === 'string') throw new Error('no port')
  return address.port
}

export interface LocalRedisOptions {
  readonly port?: number
  readonly appendOnlyDir?: string
  /**
   * Run outside the caller's process group, so a terminal's Ctrl-C (sent to the whole foreground
   * group) does not stop Redis before the services using it have closed: the sandbox launcher
   * stops it last, itself. Whoever asks for this must also kill it on exit (`killNow`).
   */
  readonly ownProcessGroup?: boolean
}

/**
 * The persistence settings docker-compose.yml ships, which a server started with `appendOnlyDir`
 * runs with: test/architecture/redis-persistence.test.ts fails when the two part ways.
 */
export const SHIPPED_REDIS_PERSISTENCE: Readonly<Record<'appendonly' | 'appendfsync' | 'maxmemory-policy', string>> = {
  appendonly: 'yes',
  appendfsync: 'always',
  'maxmemory-policy': 'noeviction'
}

export async function startLocalRedis (options: LocalRedisOptions = {}): Promise<LocalRedis> {
  const port = options.port ?? await freePort()
  const args = [
    '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--maxmemory-policy', SHIPPED_REDIS_PERSISTENCE['maxmemory-policy'],
    ...(options.appendOnlyDir === undefined
      ? ['--appendonly', 'no']
      : ['--appendonly', SHIPPED_REDIS_PERSISTENCE.appendonly, '--appendfsync', SHIPPED_REDIS_PERSISTENCE.appendfsync, '--dir', options.appendOnlyDir])
  ]
  const child: ChildProcess = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'], detached: options.ownProcessGroup === true })
  let output = ''
  const ready = new Promise<void>((resolve, reject) => {
    child.once('error', (error: NodeJS.ErrnoException) => reject(error.code === 'ENOENT' ? new RedisServerNotFoundError() : error))
    child.once('exit', (code) => reject(new Error(`redis-server exited with ${code}: ${output.slice(-500)}`)))
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString()
      if (output.includes('Ready to accept connections')) resolve()
    })
  })
  await ready
  child.removeAllListeners('exit')
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    async stop () {
      if (child.exitCode !== null || child.signalCode !== null) return
      const exited = once(child, 'exit')
      child.kill('SIGTERM')
      await exited
    },
    async crash () {
      if (child.exitCode !== null || child.signalCode !== null) return
      const exited = once(child, 'exit')
      child.kill('SIGKILL')
      await exited
    },
    killNow () {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    }
  }
}
