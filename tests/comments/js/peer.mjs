#!/usr/bin/env node
// A Yjs document driven over stdin/stdout by pytest (tests/comments): it edits a Y.Text and makes
// and resolves relative positions with the real `yjs` package. Updates travel through the Python
// side (base64), which relays them to the server with its own client.
//
// One JSON command per stdin line, one JSON reply per stdout line ({"ok": true, ...} or
// {"ok": false, "error": "..."}); nothing else is written to stdout. Indices are UTF-16 units.
//   {"op": "apply", "update": b64}                       Y.applyUpdate
//   {"op": "insert", "root": "t", "index": i, "text": s}  -> {"update": b64} (this edit only)
//   {"op": "delete", "root": "t", "index": i, "length": n} -> {"update": b64}
//   {"op": "relpos", "root": "t", "index": i, "assoc": a} -> {"position": b64}
//   {"op": "resolve", "position": b64}                    -> {"index": i | null, "root": name | null}
//   {"op": "text", "root": "t"}                           -> {"text": s}

import * as readline from 'node:readline'
import * as Y from 'yjs'

const doc = new Y.Doc()
const b64 = (bytes) => Buffer.from(bytes).toString('base64')
const bytes = (text) => new Uint8Array(Buffer.from(text, 'base64'))

const edit = (change) => {
  const before = Y.encodeStateVector(doc)
  change()
  return { update: b64(Y.encodeStateAsUpdate(doc, before)) }
}

const run = (cmd) => {
  switch (cmd.op) {
    case 'apply':
      Y.applyUpdate(doc, bytes(cmd.update))
      return {}
    case 'insert':
      return edit(() => doc.getText(cmd.root).insert(cmd.index, cmd.text))
    case 'delete':
      return edit(() => doc.getText(cmd.root).delete(cmd.index, cmd.length))
    case 'relpos': {
      const position = Y.createRelativePositionFromTypeIndex(doc.getText(cmd.root), cmd.index, cmd.assoc)
      return { position: b64(Y.encodeRelativePosition(position)) }
    }
    case 'resolve': {
      const position = Y.decodeRelativePosition(bytes(cmd.position))
      const absolute = Y.createAbsolutePositionFromRelativePosition(position, doc)
      if (absolute === null) return { index: null, root: null }
      const root = [...doc.share.entries()].find(([, type]) => type === absolute.type)
      return { index: absolute.index, root: root ? root[0] : null }
    }
    case 'text':
      return { text: doc.getText(cmd.root).toString() }
    default:
      throw new Error(`unknown op ${cmd.op}`)
  }
}

const lines = readline.createInterface({ input: process.stdin })
lines.on('line', (line) => {
  let reply
  try {
    reply = { ok: true, ...run(JSON.parse(line)) }
  } catch (err) {
    reply = { ok: false, error: String(err && err.stack ? err.stack : err) }
  }
  process.stdout.write(JSON.stringify(reply) + '\n')
})
lines.on('close', () => process.exit(0))
