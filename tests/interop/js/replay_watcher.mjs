#!/usr/bin/env node
// A stock y-websocket v3 `WebsocketProvider` watching a document (a replay room) and reporting, one
// JSON line per event on stdout, everything it receives: the text of root `t` after every
// transaction that changed it, and the awareness states of others after every awareness change.
//
// Usage: node replay_watcher.mjs <serverUrl> <room> <paramsJSON>
// stdout: {"event": "ready", "clientID": n} | {"event": "synced"} | {"event": "text", "text": s, "ms": t}
//         | {"event": "awareness", "states": {...}} | {"event": "closed", "code": n}
// stdin:  any line ends the process (provider destroyed first).

import * as readline from 'node:readline'
import WebSocket from 'ws'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'

const [serverUrl, room, rawParams] = process.argv.slice(2)
const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')
for (const level of ['error', 'warn']) {
  console[level] = (...args) => out({ event: 'console', level, text: args.map(String).join(' ') })
}
for (const level of ['log', 'info', 'debug']) {
  console[level] = (...args) => process.stderr.write(args.map(String).join(' ') + '\n')
}

const doc = new Y.Doc()
const text = doc.getText('t')
const provider = new WebsocketProvider(serverUrl, room, doc, {
  WebSocketPolyfill: WebSocket,
  disableBc: true,
  params: rawParams ? JSON.parse(rawParams) : {},
  maxBackoffTime: 300
})
const started = Date.now()
let last = text.toString()
doc.on('afterTransaction', () => {
  const now = text.toString()
  if (now !== last) {
    last = now
    out({ event: 'text', text: now, ms: Date.now() - started })
  }
})
provider.on('sync', (synced) => {
  if (synced) out({ event: 'synced', text: text.toString() })
})
provider.on('connection-close', (event) => out({ event: 'closed', code: event ? event.code : null }))
provider.awareness.on('change', () => {
  const states = {}
  for (const [id, state] of provider.awareness.getStates()) {
    if (id !== doc.clientID) states[String(id)] = state
  }
  out({ event: 'awareness', states })
})
out({ event: 'ready', clientID: doc.clientID })

const lines = readline.createInterface({ input: process.stdin })
const stop = () => {
  provider.destroy()
  process.exit(0)
}
lines.on('line', stop)
lines.on('close', stop)
