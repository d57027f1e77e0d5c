import { spawn, execFile, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { once } from 'node:events'
import { promisify } from 'node:util'
import { freePort } from '../../sandbox/redis-server.ts'
import { eventually } from './flow-step-harness.ts'

const run = promisify(execFile)

/**
 * A throw-away Redis Cluster on loopback: three masters, no replicas, no persistence, the 16,384
 * slots split between them by `redis-cli --cluster create`. Ready once every node reports
 * `cluster_state:ok` (a node answers commands before it has learned the whole slot map).
 * `stop()` ends every redis-server it started and removes their nodes-*.conf files.
 */
export interface LocalRedisCluster {
  /** One node's URL: the seed the service is given as REDIS_URL. */
  readonly url: string
  readonly ports: readonly number[]
  stop (): Promise<void>
}

export async function startLocalRedisCluster (nodes = 3): Promise<LocalRedisCluster> {
  const dir = await mkdtemp(join(tmpdir(), 'mds-redis-cluster-'))
  const children: ChildProcess[] = []
  // Never leave a node behind, even when the test process ends before its teardown has run.
  const killNow = () => { for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') }
  process.once('exit', killNow)
  const stop = async () => {
    process.off('exit', killNow)
    await Promise.all(children.map(async (child) => {
      if (child.exitCode !== null || child.signalCode !== null) return
      const exited = once(child, 'exit')
      child.kill('SIGTERM')
      await exited
    }))
    await rm(dir, { recursive: true, force: true })
  }
  try {
    const ports: number[] = []
    for (let i = 0; i < nodes; i++) {
      const port = await freePort()
      ports.push(port)
      // The cluster bus port is named, not left to Redis's default of port + 10000: that one may be
      // taken, and Redis refuses to start in cluster mode on a port above 55535 for its sake.
      children.push(await startClusterNode(port, await freePort(), dir))
    }
    await run('redis-cli', ['--cluster', 'create', ...ports.map((port) => `127.0.0.1:${port}`), '--cluster-replicas', '0', '--cluster-yes'], { timeout: 30_000 })
    for (const port of ports) {
      await eventually(async () => {
        const { stdout } = await run('redis-cli', ['-p', String(port), 'cluster', 'info'], { timeout: 5_000 })
        return stdout.includes('cluster_state:ok') ? true : undefined
      }, { timeoutMs: 20_000, intervalMs: 50, what: `cluster_state:ok on node ${port}` })
    }
    return { url: `redis://127.0.0.1:${ports[0]!}`, ports, stop }
  } catch (error) {
    await stop()
    throw error
  }
}

/** A node that is not ready by then never will be; fail the test with its output instead of hanging. */
const NODE_START_DEADLINE_MS = 20_000

async function startClusterNode (port: number, busPort: number, dir: string): Promise<ChildProcess> {
  const child = spawn('redis-server', [
    '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
    '--maxmemory-policy', 'noeviction',
    '--cluster-enabled', 'yes', '--cluster-port', String(busPort), '--cluster-config-file', join(dir, `nodes-${port}.conf`), '--dir', dir
  ], { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  let timer: NodeJS.Timeout | undefined
  await new Promise<void>((resolve, reject) => {
    timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`redis-server (cluster node ${port}) not ready within ${NODE_START_DEADLINE_MS} ms: ${output.slice(-500)}`))
    }, NODE_START_DEADLINE_MS)
    child.once('error', reject)
    child.once('exit', (code) => { reject(new Error(`redis-server (cluster node ${port}) exited with ${code}: ${output.slice(-500)}`)) })
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString()
      if (output.includes('Ready to accept connections')) resolve()
    })
  }).finally(() => { clearTimeout(timer) })
  child.removeAllListeners('exit')
  child.stdout?.removeAllListeners('data')
  child.stdout?.resume()
  child.stderr?.resume()
  return child
}
