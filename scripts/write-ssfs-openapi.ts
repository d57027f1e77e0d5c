import { writeFile } from 'node:fs/promises'
import { buildSsfsOpenApiDocument, SSFS_DOCUMENT_PLACEHOLDER_URL } from '../src/ssfs/openapi-document.ts'
import packageJson from '../package.json' with { type: 'json' }

/**
 * `npm run openapi`: regenerates openapi/ssfs-service.json, the Self-Service Flow Step API
 * definition, from the route schemas. Commit the result; test/ssfs/openapi-document.test.ts fails
 * while the committed copy and the schemas disagree.
 */
export function committedSsfsDocument (): Record<string, unknown> {
  return buildSsfsOpenApiDocument({
    publicUrl: SSFS_DOCUMENT_PLACEHOLDER_URL,
    providerName: 'marketo-dynamics-sync',
    supportContact: 'https://github.com/marketo-dynamics-sync/marketo-dynamics-sync/issues',
    version: packageJson.version
  })
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const target = new URL('../openapi/ssfs-service.json', import.meta.url)
  await writeFile(target, `${JSON.stringify(committedSsfsDocument(), null, 2)}\n`)
  process.stdout.write(`wrote ${target.pathname}\n`)
}
