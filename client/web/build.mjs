// Builds the browser app into dist/: a minified ES bundle and stylesheet with source maps, their
// names carrying a content hash (served as immutable), and index.html pointing at them.
// `node build.mjs`; the Makefile's `web` target runs it after `npm ci`.
import * as esbuild from 'esbuild'
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const dist = join(here, 'dist')
const assets = join(dist, 'assets')

await rm(dist, { recursive: true, force: true })
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
for (const [file, output] of Object.entries(result.metafile.outputs)) {
  if (output.entryPoint) built[basename(output.entryPoint)] = basename(file)
}
const page = (await readFile(join(here, 'index.html'), 'utf8'))
  .replace('/assets/app.js', `/assets/${built['main.js']}`)
  .replace('/assets/styles.css', `/assets/${built['styles.css']}`)
await writeFile(join(dist, 'index.html'), page)
console.log(`built ${dist}: ${built['main.js']}, ${built['styles.css']}`)
