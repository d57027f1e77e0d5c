import { cp } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'

/**
 * The files the compiled service reads at run time that `tsc` does not emit: the SSFS definition and
 * icons (routes/ssfs-definition.ts reads `../openapi/` beside the routes) and the default field
 * mapping (src/sync/field-mapping-file.ts reads it beside itself). Each keeps its place relative to
 * the code that reads it, so the same `import.meta.url` paths hold in `dist/` as in the sources.
 */
const ROOT = new URL('../', import.meta.url)
/** The build's output directory, relative to the project: `dist` unless a test builds elsewhere. */
const OUT_DIR = process.argv[2] ?? 'dist'
const ASSETS = ['openapi', 'src/sync/field-mapping.default.json'] as const

for (const asset of ASSETS) {
  await cp(fileURLToPath(new URL(asset, ROOT)), fileURLToPath(new URL(`${OUT_DIR}/${asset}`, ROOT)), { recursive: true })
}
