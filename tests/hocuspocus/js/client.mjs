#!/usr/bin/env node
// Stock @hocuspocus/provider clients driven over stdin/stdout by pytest: one HocuspocusProviderWebsocket
// (one socket) shared by every document this process opens, one HocuspocusProvider per document.
//
// Usage: node client.mjs <url> [optionsJSON]     url e.g. ws://127.0.0.1:1234/hocuspocus
//   options {"delay": 100, "maxDelay": 300, "messageReconnectTimeout": 30000}
//
// Driver protocol (as tests/interop/js/client.mjs): one JSON command per stdin line with "id" and
// "op"; exactly one JSON reply line each, {"id", "ok": true, ...} or {"id", "ok": false, "error"}.
// Unsolicited lines carry "event": {"event": "ready"}, {"event": "console", level, text} for every
// console.error/warn (the provider reports unknown message types that way), {"event": "uncaught"}.
//
// Ops (doc = document name):
//   open {doc, token?, roots?, sessionAwareness?}   new Y.Doc + provider, attached to the socket
//   close {doc}                                     provider.destroy(): sends Close for the document
//   insertText {doc, root, text, index?} | deleteText {doc, root, index, length}
//   mapSet {doc, root, key, value} | arrayInsert {doc, root, values, index?}
//   setAwareness {doc, state}                       awareness.setLocalState(state)
//   stateless {doc, payload}                        provider.sendStateless(payload)
//   disconnect | connect                            the shared socket
//   dump                                            -> {status, docs: {doc: state}}; state: synced,
//                                                      authenticated, scope, unsynced, roots, awareness,
//                                                      clientID, denied [reasons], closed [reasons],
//                                                      stateless [payloads]
//   waitFor {doc?, until, timeoutMs}                answer once every key of `until` holds for `doc`:
//      synced, authenticated (bool), scope, unsynced (number), roots {name: json},
//      awarenessHas [ids], awarenessLacks [ids], denied "text", closed "text", stateless "payload",
//      statelessHas "text" (a payload containing it),
//      status "connected"|"disconnected" (the socket)
//   exit

import * as readline from 'node:readline'
import { inspect } from 'node:util'
import WebSocket from 'ws'
import * as Y from 'yjs'
import { HocuspocusProvider, HocuspocusProviderWebsocket } from '@hocuspocus/provider'

const [url, rawOptions] = process.argv.slice(2)
if (!url) {
  process.stderr.write('usage: node client.mjs <url> [optionsJSON]\n')
  process.exit(2)
}
const options = rawOptions ? JSON.parse(rawOptions) : {}

const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')
const consoleErrors = []
const toText = (args) => args.map((a) => (typeof a === 'string' ? a : inspect(a))).join(' ')
for (const level of ['error', 'warn']) {
  console[level] = (...args) => {
    const text = toText(args)
    consoleErrors.push({ level, text })
    process.stderr.write(`[console.${level}] ${text}\n`)
    out({ event: 'console', level, text })
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
})

const socket = new HocuspocusProviderWebsocket({
  url,
  WebSocketPolyfill: WebSocket,
  delay: options.delay ?? 100,
  minDelay: options.delay ?? 100,
  maxDelay: options.maxDelay ?? 300,
  messageReconnectTimeout: options.messageReconnectTimeout ?? 30000
})

// -- documents ---------------------------------------------------------------------------------
const docs = new Map() // name -> {doc, provider, kinds, denied, closed, stateless}

const rootOf = (entry, name, kind) => {
  const known = entry.kinds[name]
  if (known && known !== kind) throw new Error(`root ${name} is a ${known}, not a ${kind}`)
  entry.kinds[name] = kind
  if (kind === 'text') return entry.doc.getText(name)
  if (kind === 'map') return entry.doc.getMap(name)
  if (kind === 'array') return entry.doc.getArray(name)
  throw new Error(`unknown root kind ${kind}`)
}

const entryOf = (name) => {
  const entry = docs.get(name)
  if (!entry) throw new Error(`document ${name} is not open`)
  return entry
}

const open = (cmd) => {
  if (docs.has(cmd.doc)) throw new Error(`document ${cmd.doc} is already open`)
  const doc = new Y.Doc()
  const entry = { doc, kinds: {}, denied: [], closed: [], stateless: [] }
  for (const [name, kind] of Object.entries({ t: 'text', m: 'map', ...(cmd.roots || {}) })) rootOf(entry, name, kind)
  const provider = new HocuspocusProvider({
    websocketProvider: socket,
    name: cmd.doc,
    document: doc,
    token: cmd.token ?? null,
    sessionAwareness: cmd.sessionAwareness ?? false,
    onAuthenticationFailed: ({ reason }) => { entry.denied.push(reason); recheck() },
    onClose: ({ event }) => { entry.closed.push(event.reason ?? ''); recheck() },
    onStateless: ({ payload }) => { entry.stateless.push(payload); recheck() }
  })
  entry.provider = provider
  for (const name of ['synced', 'authenticated', 'unsyncedChanges', 'awarenessChange', 'status']) {
    provider.on(name, () => queueMicrotask(recheck))
  }
  doc.on('afterTransaction', () => queueMicrotask(recheck))
  docs.set(cmd.doc, entry)
  provider.attach()
}

const state = (entry) => {
  const roots = {}
  for (const [name, kind] of Object.entries(entry.kinds)) roots[name] = rootOf(entry, name, kind).toJSON()
  const awareness = {}
  if (entry.provider.awareness) {
    for (const [id, s] of entry.provider.awareness.getStates()) awareness[String(id)] = s
  }
  return {
    clientID: entry.doc.clientID,
    synced: entry.provider.isSynced,
    authenticated: entry.provider.isAuthenticated,
    scope: entry.provider.authorizedScope ?? null,
    unsynced: entry.provider.unsyncedChanges,
    roots,
    awareness,
    denied: entry.denied,
    closed: entry.closed,
    stateless: entry.stateless
  }
}

const dump = () => {
  const all = {}
  for (const [name, entry] of docs) all[name] = state(entry)
  return { status: socket.status, docs: all, consoleErrors }
}

const canon = (v) => {
  if (Array.isArray(v)) return '[' + v.map(canon).join(',') + ']'
  if (v !== null && typeof v === 'object') {
    return '{' + Object.keys(v).sort().map((k) => JSON.stringify(k) + ':' + canon(v[k])).join(',') + '}'
  }
  return JSON.stringify(v === undefined ? null : v)
}

const holds = (name, until) => {
  if ('status' in until && socket.status !== until.status) return false
  if (name === undefined || name === null) return true
  const entry = docs.get(name)
  if (!entry) return false
  const s = state(entry)
  for (const key of ['synced', 'authenticated', 'scope', 'unsynced']) {
    if (key in until && s[key] !== until[key]) return false
  }
  if (until.roots) {
    for (const [root, expected] of Object.entries(until.roots)) {
      if (canon(s.roots[root]) !== canon(expected)) return false
    }
  }
  if (until.awarenessHas && !until.awarenessHas.every((id) => String(id) in s.awareness)) return false
  if (until.awarenessLacks && until.awarenessLacks.some((id) => String(id) in s.awareness)) return false
  if (until.denied && !s.denied.some((r) => r.includes(until.denied))) return false
  if (until.closed && !s.closed.some((r) => r.includes(until.closed))) return false
  if (until.stateless && !s.stateless.includes(until.stateless)) return false
  if (until.statelessHas && !s.stateless.some((p) => p.includes(until.statelessHas))) return false
  return true
}

const waiters = new Set()
function recheck () {
  for (const waiter of Array.from(waiters)) {
    let ok
    try {
      ok = holds(waiter.doc, waiter.until)
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
socket.on('status', () => queueMicrotask(recheck))

const handle = (cmd) => {
  switch (cmd.op) {
    case 'open':
      open(cmd)
      return {}
    case 'close':
      entryOf(cmd.doc).provider.destroy()
      docs.delete(cmd.doc)
      return {}
    case 'insertText': {
      const text = rootOf(entryOf(cmd.doc), cmd.root, 'text')
      text.insert(cmd.index ?? text.length, cmd.text)
      return {}
    }
    case 'deleteText':
      rootOf(entryOf(cmd.doc), cmd.root, 'text').delete(cmd.index, cmd.length)
      return {}
    case 'mapSet':
      rootOf(entryOf(cmd.doc), cmd.root, 'map').set(cmd.key, cmd.value)
      return {}
    case 'arrayInsert': {
      const array = rootOf(entryOf(cmd.doc), cmd.root, 'array')
      array.insert(cmd.index ?? array.length, cmd.values)
      return {}
    }
    case 'setAwareness':
      entryOf(cmd.doc).provider.awareness.setLocalState(cmd.state ?? null)
      return {}
    case 'stateless':
      entryOf(cmd.doc).provider.sendStateless(cmd.payload)
      return {}
    case 'disconnect':
      socket.disconnect()
      return {}
    case 'connect':
      socket.connect()
      return {}
    case 'dump':
      return { state: dump() }
    case 'waitFor': {
      const waiter = { id: cmd.id, doc: cmd.doc, until: cmd.until || {} }
      waiter.timer = setTimeout(() => {
        waiters.delete(waiter)
        out({ id: cmd.id, ok: false, error: `timeout after ${cmd.timeoutMs} ms`, state: dump() })
      }, cmd.timeoutMs ?? 10000)
      waiters.add(waiter)
      recheck()
      return undefined
    }
    case 'exit': {
      const final = dump()
      for (const entry of docs.values()) entry.provider.destroy()
      socket.destroy()
      process.stdout.write(JSON.stringify({ id: cmd.id, ok: true, state: final }) + '\n', () => process.exit(0))
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
lines.on('close', () => {
  socket.destroy()
  process.exit(0)
})

out({ event: 'ready' })
