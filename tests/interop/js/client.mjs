#!/usr/bin/env node
// A y-websocket v3 client (stock `WebsocketProvider`) driven over stdin/stdout by pytest.
//
// Usage: node client.mjs <serverUrl> <room> [optionsJSON]
//   serverUrl  e.g. ws://127.0.0.1:1234/ws   (the provider connects to serverUrl + '/' + room)
//   options    {"params": {...}, "roots": {"t": "text", ...}, "maxBackoffTime": 300, "connect": true}
//
// Driver protocol: one JSON object per line on stdin, each with an "id" and an "op"; each gets
// exactly one JSON reply line on stdout: {"id": .., "ok": true, ...} or {"id": .., "ok": false,
// "error": "..."}. Commands run as they arrive (a pending `waitFor` does not block the next
// command). Unsolicited lines carry "event" instead of "id": {"event": "ready"} once at start,
// {"event": "console", "level": "error", "text": ...} for every console.error/console.warn (the
// provider reports unknown message types that way), {"event": "uncaught", ...} for an exception.
// Nothing else is ever written to stdout; console.log/info/debug go to stderr.
//
// Ops:
//   insertText {root, index?, text}          index in UTF-16 code units (Yjs); default: the end
//   deleteText {root, index, length}
//   mapSet {root, key, value} | mapDelete {root, key}
//   arrayInsert {root, index?, values} | arrayDelete {root, index, length}
//   transact {ops: [...]}                     several edits in one Yjs transaction (one update)
//   disconnect | connect                      provider.disconnect() / provider.connect()
//   dropSocket                                kill the TCP socket (no close frame): the provider
//                                             reconnects by itself, like after a network failure
//   setAwareness {state}                      awareness.setLocalState(state) (null clears it)
//   dump                                      -> {clientID, synced, connected, roots, awareness,
//                                                 stateVector, consoleErrors}
//   waitFor {until, timeoutMs}                answer once `until` holds (checked now and on every
//                                             doc/awareness/provider event), or fail after
//                                             `timeoutMs` with the current dump. `until` keys
//                                             (all must hold): synced, connected (bool),
//                                             roots {name: json}, mapKeys {root: [keys]},
//                                             awarenessHas [ids], awarenessLacks [ids],
//                                             awarenessStates {id: state}, stateVector {id: clock},
//                                             consoleIncludes "text" (a console.error/warn seen)
//   exit                                      destroy the provider, answer, exit(0)

import * as readline from 'node:readline'
import { inspect } from 'node:util'
import WebSocket from 'ws'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'

const [serverUrl, room, rawOptions] = process.argv.slice(2)
if (!serverUrl || !room) {
  process.stderr.write('usage: node client.mjs <serverUrl> <room> [optionsJSON]\n')
  process.exit(2)
}
const options = rawOptions ? JSON.parse(rawOptions) : {}

// -- stdout is reserved for protocol lines -------------------------------------------------------
const out = (obj) => {
  process.stdout.write(JSON.stringify(obj, (_k, v) => (typeof v === 'bigint' ? Number(v) : v)) + '\n')
}
const consoleErrors = []
const toText = (args) => args.map((a) => (typeof a === 'string' ? a : inspect(a))).join(' ')
for (const level of ['error', 'warn']) {
  console[level] = (...args) => {
    const text = toText(args)
    consoleErrors.push({ level, text })
    process.stderr.write(`[console.${level}] ${text}\n`)
    out({ event: 'console', level, text })
    queueMicrotask(recheck) // a waitFor may be waiting for this message (consoleIncludes)
  }
}
for (const level of ['log', 'info', 'debug']) {
  console[level] = (...args) => process.stderr.write(`[console.${level}] ${toText(args)}\n`)
}
process.on('uncaughtException', (err) => {
  const text = err && err.stack ? err.stack : String(err)
  consoleErrors.push({ level: 'uncaught', text })
  process.stderr.write(`[uncaught] ${text}\n`)
  out({ event: 'uncaught', text })
  queueMicrotask(recheck)
})

// -- the document and the provider ------------------------------------------------------------
const doc = new Y.Doc()
const kinds = { t: 'text', m: 'map', a: 'array', barrier: 'map', ...(options.roots || {}) }

const rootOf = (name, kind) => {
  const known = kinds[name]
  if (known && known !== kind) throw new Error(`root ${name} is a ${known}, not a ${kind}`)
  kinds[name] = kind
  if (kind === 'text') return doc.getText(name)
  if (kind === 'map') return doc.getMap(name)
  if (kind === 'array') return doc.getArray(name)
  throw new Error(`unknown root kind ${kind}`)
}
for (const [name, kind] of Object.entries(kinds)) rootOf(name, kind)

const provider = new WebsocketProvider(serverUrl, room, doc, {
  WebSocketPolyfill: WebSocket,
  disableBc: true,
  connect: options.connect !== false,
  params: options.params || {},
  maxBackoffTime: options.maxBackoffTime ?? 300
})

// -- state ---------------------------------------------------------------------------------------
const rootsJSON = () => {
  const roots = {}
  for (const [name, kind] of Object.entries(kinds)) roots[name] = rootOf(name, kind).toJSON()
  return roots
}
const awarenessJSON = () => {
  const states = {}
  for (const [id, state] of provider.awareness.getStates()) states[String(id)] = state
  return states
}
const stateVectorJSON = () => {
  const sv = {}
  for (const [client, clock] of Y.decodeStateVector(Y.encodeStateVector(doc))) sv[String(client)] = clock
  return sv
}
const dump = () => ({
  clientID: doc.clientID,
  synced: provider.synced,
  connected: provider.wsconnected,
  roots: rootsJSON(),
  awareness: awarenessJSON(),
  stateVector: stateVectorJSON(),
  consoleErrors
})

// Canonical JSON (sorted keys) for deep equality.
const canon = (v) => {
  if (Array.isArray(v)) return '[' + v.map(canon).join(',') + ']'
  if (v !== null && typeof v === 'object') {
    return '{' + Object.keys(v).sort().map((k) => JSON.stringify(k) + ':' + canon(v[k])).join(',') + '}'
  }
  return JSON.stringify(v === undefined ? null : v)
}
const equal = (a, b) => canon(a) === canon(b)

const holds = (until) => {
  if ('synced' in until && provider.synced !== until.synced) return false
  if ('connected' in until && provider.wsconnected !== until.connected) return false
  if (until.roots) {
    const roots = rootsJSON()
    for (const [name, expected] of Object.entries(until.roots)) {
      if (!(name in roots) || !equal(roots[name], expected)) return false
    }
  }
  if (until.mapKeys) {
    for (const [name, keys] of Object.entries(until.mapKeys)) {
      const map = rootOf(name, 'map')
      if (!keys.every((k) => map.has(k))) return false
    }
  }
  const states = provider.awareness.getStates()
  if (until.awarenessHas && !until.awarenessHas.every((id) => states.has(Number(id)))) return false
  if (until.awarenessLacks && until.awarenessLacks.some((id) => states.has(Number(id)))) return false
  if (until.awarenessStates) {
    for (const [id, expected] of Object.entries(until.awarenessStates)) {
      if (!states.has(Number(id)) || !equal(states.get(Number(id)), expected)) return false
    }
  }
  if (until.stateVector) {
    const sv = Y.decodeStateVector(Y.encodeStateVector(doc))
    for (const [client, clock] of Object.entries(until.stateVector)) {
      if ((sv.get(Number(client)) || 0) < clock) return false
    }
  }
  if (until.consoleIncludes && !consoleErrors.some((e) => e.text.includes(until.consoleIncludes))) return false
  return true
}

// Pending waitFor commands, re-checked on every event that can change their outcome.
const waiters = new Set()
const recheck = () => {
  for (const waiter of Array.from(waiters)) {
    let ok
    try {
      ok = holds(waiter.until)
    } catch (err) {
      waiters.delete(waiter)
      clearTimeout(waiter.timer)
      out({ id: waiter.id, ok: false, error: String(err && err.message ? err.message : err) })
      continue
    }
    if (ok) {
      waiters.delete(waiter)
      clearTimeout(waiter.timer)
      out({ id: waiter.id, ok: true, state: dump() })
    }
  }
}
doc.on('afterTransaction', recheck)
// 'update' (a superset of 'change'), registered after the provider's own listener: a waitFor
// answers only after the provider has relayed the change (y-websocket re-broadcasts every awareness
// change it applies), so the test's next step cannot overtake that relay.
provider.awareness.on('update', recheck)
provider.on('status', recheck)
provider.on('sync', recheck)
provider.on('connection-close', recheck)

// -- ops -----------------------------------------------------------------------------------------
const edit = (cmd) => {
  switch (cmd.op) {
    case 'insertText': {
      const text = rootOf(cmd.root, 'text')
      text.insert(cmd.index ?? text.length, cmd.text)
      return
    }
    case 'deleteText':
      rootOf(cmd.root, 'text').delete(cmd.index, cmd.length)
      return
    case 'mapSet':
      rootOf(cmd.root, 'map').set(cmd.key, cmd.value)
      return
    case 'mapDelete':
      rootOf(cmd.root, 'map').delete(cmd.key)
      return
    case 'arrayInsert': {
      const array = rootOf(cmd.root, 'array')
      array.insert(cmd.index ?? array.length, cmd.values)
      return
    }
    case 'arrayDelete':
      rootOf(cmd.root, 'array').delete(cmd.index, cmd.length)
      return
    default:
      throw new Error(`unknown edit op ${cmd.op}`)
  }
}

const handle = (cmd) => {
  switch (cmd.op) {
    case 'insertText':
    case 'deleteText':
    case 'mapSet':
    case 'mapDelete':
    case 'arrayInsert':
    case 'arrayDelete':
      edit(cmd)
      return { roots: rootsJSON() }
    case 'transact':
      doc.transact(() => cmd.ops.forEach(edit))
      return { roots: rootsJSON() }
    case 'disconnect':
      provider.disconnect()
      return {}
    case 'connect':
      provider.connect()
      return {}
    case 'dropSocket': {
      // A network failure: the socket dies without a close frame or an awareness goodbye; the
      // provider notices (code 1006) and reconnects by itself.
      const ws = provider.ws
      if (ws === null) throw new Error('not connected')
      ws.terminate()
      return {}
    }
    case 'setAwareness':
      provider.awareness.setLocalState(cmd.state ?? null)
      return {}
    case 'dump':
      return { state: dump() }
    case 'waitFor': {
      const waiter = { id: cmd.id, until: cmd.until || {} }
      waiter.timer = setTimeout(() => {
        waiters.delete(waiter)
        out({ id: cmd.id, ok: false, error: `timeout after ${cmd.timeoutMs} ms`, state: dump() })
      }, cmd.timeoutMs ?? 10000)
      waiters.add(waiter)
      recheck()
      return undefined // answered by recheck or the timer
    }
    case 'exit': {
      const state = dump()
      provider.destroy()
      doc.destroy()
      process.stdout.write(JSON.stringify({ id: cmd.id, ok: true, state }) + '\n', () => process.exit(0))
      return undefined
    }
    default:
      throw new Error(`unknown op ${cmd.op}`)
  }
}

const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity })
lines.on('line', (line) => {
  if (!line.trim()) return
  let cmd
  try {
    cmd = JSON.parse(line)
  } catch (err) {
    out({ id: null, ok: false, error: `bad JSON: ${err.message}` })
    return
  }
  try {
    const reply = handle(cmd)
    if (reply !== undefined) out({ id: cmd.id, ok: true, ...reply })
  } catch (err) {
    out({ id: cmd.id, ok: false, error: String(err && err.stack ? err.stack : err) })
  }
})
// pytest went away: do not linger.
lines.on('close', () => {
  provider.destroy()
  process.exit(0)
})

out({ event: 'ready', clientID: doc.clientID, url: provider.url })
