// Builds the browser app into dist/: a minified ES bundle and stylesheet with source maps, their
// names carrying a content hash (served as immutable), and index.html pointing at them.
// `node build.mjs`; the Makefile's `web` target runs it after `npm ci`.
//
// A running server keeps working during a rebuild: new assets are added beside the old ones,
// index.html is replaced atomically, and assets of earlier builds are removed only once they are
// a few minutes old (a page loaded just before may still ask for them).
import * as esbuild from 'esbuild'
import { mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'

const here = dirname(fileURLToPath(import.meta.url))
const dist = join(here, 'dist')
const assets = join(dist, 'assets')
const KEEP_OLD_ASSETS_MS = 5 * 60 * 1000

await mkdir(assets, { recursive: true })
const result = await esbuild.build({
  entryPoints: { app: join(here, 'src', 'main.js'), styles: join(here, 'src', 'styles.css') },
  outdir: assets,
  entryNames: '[name]-[hash]',
  bundle: true,
  minify: true,
  sourcemap: true,
  format: 'esm',
  target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
  legalComments: 'linked',
  metafile: true,
  logLevel: 'warning'
}).catch(() => process.exit(1)) // esbuild has printed the errors

const built = {}
const fresh = new Set()
for (const [file, output] of Object.entries(result.metafile.outputs)) {
  fresh.add(basename(file))
  if (output.entryPoint) built[basename(output.entryPoint)] = basename(file)
  if (/\.(js|css)$/.test(file)) { // served precompressed to browsers that accept gzip
    await writeFile(`${file}.gz`, gzipSync(await readFile(file), { level: 9 }))
    fresh.add(`${basename(file)}.gz`)
  }
}
const page = (await readFile(join(here, 'index.html'), 'utf8'))
  .replace('/assets/app.js', `/assets/${built['main.js']}`)
  .replace('/assets/styles.css', `/assets/${built['styles.css']}`)
const staged = join(dist, `.index.html.${process.pid}`)
await writeFile(staged, page)
await rename(staged, join(dist, 'index.html'))

const now = Date.now()
for (const name of await readdir(assets)) {
  if (fresh.has(name)) continue
  const path = join(assets, name)
  if (now - (await stat(path)).mtimeMs > KEEP_OLD_ASSETS_MS) await rm(path, { force: true })
}
console.log(`built ${dist}: ${built['main.js']}, ${built['styles.css']}`)
