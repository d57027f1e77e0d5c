import { readdirSync, readFileSync } from 'node:fs'

/**
 * A process's descendants as Linux shows them in /proc, for tests that must prove a stop left
 * nothing behind. Captured while the tree is whole: once a parent dies its children are
 * re-parented (to init or a subreaper) and can no longer be found by walking down from it.
 */

interface ProcessEntry { readonly pid: number, readonly ppid: number, readonly command: string }

/** `/proc/<pid>/stat`: the command sits in parentheses and may itself hold spaces or ')'. */
function readEntry (pid: number): ProcessEntry | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const close = stat.lastIndexOf(')')
    const [state, ppid] = stat.slice(close + 2).split(' ')
    // A zombie has exited; it only waits for its parent to collect its status.
    if (state === 'Z') return undefined
    return { pid, ppid: Number(ppid), command: readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim() }
  } catch {
    return undefined
  }
}

function listProcesses (): ProcessEntry[] {
  return readdirSync('/proc').filter((name) => /^\d+$/.test(name)).map(Number)
    .map(readEntry).filter((entry): entry is ProcessEntry => entry !== undefined)
}

export interface DescendantProcess { readonly pid: number, readonly command: string }

export function descendantsOf (rootPid: number): DescendantProcess[] {
  const children = new Map<number, ProcessEntry[]>()
  for (const entry of listProcesses()) children.set(entry.ppid, [...(children.get(entry.ppid) ?? []), entry])
  const found: DescendantProcess[] = []
  const pending = [rootPid]
  while (pending.length > 0) {
    for (const child of children.get(pending.pop()!) ?? []) {
      found.push({ pid: child.pid, command: child.command })
      pending.push(child.pid)
    }
  }
  return found
}

/** Those of `processes` still running (zombies count as gone; a reused pid runs another command). */
export function stillRunning (processes: readonly DescendantProcess[]): DescendantProcess[] {
  return processes.filter((process) => readEntry(process.pid)?.command === process.command)
}
