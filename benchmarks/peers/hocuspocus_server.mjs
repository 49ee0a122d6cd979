// Hocuspocus peer for cocreate's benchmarks: `node hocuspocus_server.mjs PORT [DATA_DIR]`.
// Stock configuration (debounce 2 s, maxDebounce 10 s); with DATA_DIR, the Database extension keeps
// each document's state in one file, so a restarted server can serve a cold join.
import { Server } from '@hocuspocus/server'
import { Database } from '@hocuspocus/extension-database'
import { readFile, writeFile, rename } from 'node:fs/promises'
import { join } from 'node:path'

const [portArg, dataDir] = process.argv.slice(2)
const port = Number(portArg)
const fileOf = (name) => join(dataDir, encodeURIComponent(name) + '.ydoc')
const extensions = []
if (dataDir) {
  extensions.push(new Database({
    fetch: async ({ documentName }) => {
      try {
        return await readFile(fileOf(documentName))
      } catch {
        return null
      }
    },
    store: async ({ documentName, state }) => {
      const target = fileOf(documentName)
      await writeFile(target + '.tmp', state)
      await rename(target + '.tmp', target)
    }
  }))
}
const server = new Server({ port, address: '127.0.0.1', quiet: true, extensions })
await server.listen()
console.log(`listening on http://127.0.0.1:${port}`)
