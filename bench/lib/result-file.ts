import { mkdir, writeFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { describeMachine } from './machine.ts'

export const RESULTS_DIR = fileURLToPath(new URL('../results/', import.meta.url))

/**
 * Writes `bench/results/<name>.json`: the figures plus the machine and the date, so a result file
 * read months later still says what it was measured on.
 */
export async function writeResult (name: string, figures: Record<string, unknown>, extra: { redis?: string } = {}): Promise<string> {
  await mkdir(RESULTS_DIR, { recursive: true })
  const path = `${RESULTS_DIR}${name}.json`
  const document = { benchmark: name, date: new Date().toISOString(), machine: describeMachine(extra), ...figures }
  await writeFile(path, JSON.stringify(document, null, 2) + '\n')
  return path
}

/** A fixed-width table on stdout; numbers right-aligned. */
export function printTable (title: string, rows: ReadonlyArray<Readonly<Record<string, string | number | boolean>>>): void {
  const first = rows[0]
  if (first === undefined) return
  const columns = Object.keys(first)
  const text = (value: unknown) => typeof value === 'number' ? (Number.isInteger(value) ? String(value) : value.toFixed(2)) : String(value)
  const widths = columns.map((column) => Math.max(column.length, ...rows.map((row) => text(row[column]).length)))
  const line = (cells: string[]) => cells.map((cell, i) => i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0)).join('  ')
  process.stdout.write(`\n${title}\n${line(columns)}\n${line(widths.map((w) => '-'.repeat(w)))}\n`)
  for (const row of rows) process.stdout.write(line(columns.map((column) => text(row[column]))) + '\n')
}

export function say (scenario: string, text: string): void {
  process.stdout.write(`[${scenario}] ${text}\n`)
}
