// Real Yjs clients for cocreate's server benchmarks: `node clients.mjs CONFIG.json`.
// y-websocket's WebsocketProvider (or HocuspocusProvider for Hocuspocus) over `ws`, one Y.Doc each.
// Workloads: fanout | ingest | storm | join. Progress lines on stdout (read by benchmarks/clients.py):
//   ready, start <ns>, end <ns>, connected, result <path>. Times are process.hrtime (CLOCK_MONOTONIC).
import { readFileSync, writeFileSync } from 'node:fs'
import { createInterface } from 'node:readline'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import { HocuspocusProvider } from '@hocuspocus/provider'
import WebSocket from 'ws'

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'))
const now = () => process.hrtime.bigint()
const say = (line) => process.stdout.write(line + '\n')
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
let seed = config.seed || 1
const random = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648 }

function connect (room) {
  const doc = new Y.Doc()
  let provider
  if (config.provider === 'hocuspocus') {
    provider = new HocuspocusProvider({ url: config.url, name: room, document: doc, WebSocketPolyfill: WebSocket })
  } else {
    provider = new WebsocketProvider(config.url, room, doc, { WebSocketPolyfill: WebSocket, disableBc: true })
  }
  const client = { doc, provider, text: doc.getText('text'), synced: false, events: [] }
  client.ready = new Promise((resolve) => {
    const done = () => { if (!client.synced) { client.synced = true; resolve() } }
    provider.on(config.provider === 'hocuspocus' ? 'synced' : 'sync', (state) => { if (state !== false) done() })
  })
  return client
}

// The first client of each room joins alone (rooms in parallel), then the others all at once:
// pycrdt-websocket 0.16 deadlocks when several clients open a room that does not exist yet.
async function connectAll (rooms, perRoom, timeoutMs) {
  const timer = sleep(timeoutMs).then(() => 'timeout')
  const first = rooms.map((room) => Object.assign(connect(room), { room }))
  let outcome = await Promise.race([Promise.all(first.map((c) => c.ready)), timer])
  const rest = []
  if (outcome !== 'timeout') {
    for (const room of rooms) for (let i = 1; i < perRoom; i++) rest.push(Object.assign(connect(room), { room }))
    outcome = await Promise.race([Promise.all(rest.map((c) => c.ready)), timer])
  }
  return { clients: [...first, ...rest], timedOut: outcome === 'timeout' }
}

function keysOf (update) {
  const decoded = Y.decodeUpdate(update)
  const keys = decoded.structs.filter((s) => s.constructor.name !== 'Skip').map((s) => `${s.id.client}:${s.id.clock}`)
  return keys
}

function closeAll (clients) {
  for (const c of clients) { c.provider.destroy(); c.doc.destroy() }
}

async function fanout () {
  const rooms = Array.from({ length: config.rooms }, (_, i) => `${config.prefix}-${i}`)
  const { clients, timedOut } = await connectAll(rooms, config.perRoom, config.timeoutMs)
  if (timedOut) throw new Error('clients did not sync in time')
  const byRoom = new Map(rooms.map((r) => [r, clients.filter((c) => c.room === r)]))
  const typists = []
  for (const members of byRoom.values()) typists.push(...members.slice(0, config.typistsPerRoom))
  const expectedLength = config.typistsPerRoom * config.keystrokes
  const sent = new Map()
  let pending = clients.length
  let finished
  const allDone = new Promise((resolve) => { finished = resolve })
  for (const c of clients) {
    c.done = false
    c.events = []
    c.doc.on('update', (update, origin) => {
      const t = now()
      if (origin === null || origin === undefined) sent.set(update, t)
      else c.events.push([t, update])
      if (!c.done && c.text.length === expectedLength) { c.done = true; if (--pending === 0) finished() }
    })
  }
  say('ready')
  await sleep(200)
  const start = now()
  say(`start ${start}`)
  const intervalMs = 1000 / config.rate
  const typing = typists.map(async (c, index) => {
    await sleep(random() * intervalMs)
    for (let k = 0; k < config.keystrokes; k++) {
      const pos = Math.floor(random() * (c.text.length + 1))
      c.doc.transact(() => c.text.insert(pos, String.fromCharCode(97 + ((index + k) % 26))))
      await sleep(intervalMs * (0.5 + random()))
    }
  })
  await Promise.all(typing)
  const outcome = await Promise.race([allDone, sleep(config.drainMs || config.timeoutMs).then(() => 'timeout')])
  const end = now()
  say(`end ${end}`)
  const sendTimes = new Map()
  for (const [update, t] of sent) for (const key of keysOf(update)) sendTimes.set(key, t)
  const latencies = []
  const errors = []
  for (const [room, members] of byRoom) {
    const texts = new Set(members.map((m) => m.text.toString()))
    if (texts.size !== 1) errors.push(`room ${room}: clients hold ${texts.size} different texts`)
    for (const m of members) {
      if (m.text.length !== expectedLength) errors.push(`room ${room}: a client holds ${m.text.length} chars, expected ${expectedLength}`)
      for (const [t, update] of m.events) {
        for (const key of keysOf(update)) {
          const s = sendTimes.get(key)
          if (s !== undefined) latencies.push(Number(t - s) / 1e6)
        }
      }
    }
  }
  const expectedDeliveries = config.rooms * config.typistsPerRoom * config.keystrokes * (config.perRoom - 1)
  if (latencies.length !== expectedDeliveries) errors.push(`${latencies.length} deliveries timed, expected ${expectedDeliveries}`)
  closeAll(clients)
  return { timedOut: outcome === 'timeout', start: String(start), end: String(end), latenciesMs: latencies, expectedDeliveries, errors: errors.slice(0, 20) }
}

async function ingest () {
  const trace = JSON.parse(readFileSync(config.traceFile, 'utf8'))
  const scratch = new Y.Doc()
  const updates = []
  scratch.on('update', (u) => updates.push(u))
  const scratchText = scratch.getText('text')
  for (const [pos, del, ins] of trace.patches) {
    scratch.transact(() => { if (del) scratchText.delete(pos, del); if (ins) scratchText.insert(pos, ins) })
  }
  if (scratchText.toString() !== trace.expected) throw new Error('Yjs replay of the trace differs from the expected text')
  if ((config.chunk || 1) > 1) { // send the history as merged chunks (a large document, fewer messages)
    const chunks = []
    for (let i = 0; i < updates.length; i += config.chunk) chunks.push(Y.mergeUpdates(updates.slice(i, i + config.chunk)))
    updates.splice(0, updates.length, ...chunks)
  }
  const { clients, timedOut } = await connectAll([config.room], 1 + config.observers, config.timeoutMs)
  if (timedOut) throw new Error('clients did not sync in time')
  const [writer, ...observers] = clients
  const expected = trace.expected
  let pending = observers.length
  let finished
  const allDone = new Promise((resolve) => { finished = resolve })
  let probeCount = 0
  let wake = null
  const completed = []
  observers.forEach((o, i) => {
    o.doc.on('update', () => {
      if (i === 0) { probeCount++; if (wake) { wake(); wake = null } }
      if (!o.done && o.text.length === expected.length && o.text.toString() === expected) {
        o.done = true
        completed.push(Number(now()))
        if (--pending === 0) finished()
      }
    })
  })
  say('ready')
  await sleep(200)
  const start = now()
  say(`start ${start}`)
  const deadline = Date.now() + config.timeoutMs
  for (let i = 0; i < updates.length && Date.now() < deadline; i++) {
    while (i - probeCount >= config.window && Date.now() < deadline) {
      await Promise.race([new Promise((resolve) => { wake = resolve }), sleep(1000)])
    }
    Y.applyUpdate(writer.doc, updates[i])
  }
  const sentAll = now()
  const outcome = await Promise.race([allDone, sleep(Math.max(0, deadline - Date.now())).then(() => 'timeout')])
  const end = now()
  say(`end ${end}`)
  const errors = observers.filter((o) => !o.done).map((o) => `an observer holds ${o.text.length} chars, not the final text`)
  closeAll(clients)
  return { timedOut: outcome === 'timeout', start: String(start), sentAll: String(sentAll), end: String(end), updates: updates.length, completedNs: completed.map(String), errors }
}

async function storm () {
  const rooms = Array.from({ length: config.rooms }, (_, i) => `${config.prefix}-${i}`)
  const start = now()
  say(`start ${start}`)
  const { clients, timedOut } = await connectAll(rooms, config.perRoom, config.timeoutMs)
  const end = now()
  say(`end ${end}`)
  const synced = clients.filter((c) => c.synced).length
  say('connected')
  await waitForLine('close')
  closeAll(clients)
  return { timedOut, start: String(start), end: String(end), clients: clients.length, synced, errors: timedOut ? [`${clients.length - synced} clients not synced in time`] : [] }
}

// Some servers answer the first sync before the stored document is loaded (y-websocket-server with
// leveldb sends the content right after): a join counts until the client holds the expected text.
// `joiners` clients join one after the other, each staying connected: the first is the cold join.
async function joinOne (deadline) {
  const start = now()
  const client = connect(config.room)
  let synced = null
  client.ready.then(() => { synced = now() })
  const full = new Promise((resolve) => {
    const check = () => { if (client.synced && client.text.length === config.expectedLength) resolve() }
    client.doc.on('update', check)
    client.ready.then(check)
  })
  const outcome = await Promise.race([full, sleep(Math.max(0, deadline - Date.now())).then(() => 'timeout')])
  const end = now()
  const chars = client.text.length
  const error = outcome === 'timeout' ? `no full document in time: ${chars} chars, expected ${config.expectedLength}` : null
  return { client, ms: Number(end - start) / 1e6, syncMs: synced === null ? null : Number(synced - start) / 1e6, chars, error }
}

async function join () {
  const deadline = Date.now() + config.timeoutMs
  const joins = []
  for (let i = 0; i < (config.joiners || 1); i++) joins.push(await joinOne(deadline))
  closeAll(joins.map((j) => j.client))
  return {
    joins: joins.map(({ ms, syncMs, chars }) => ({ ms, syncMs, chars })),
    errors: joins.filter((j) => j.error).map((j) => j.error)
  }
}

function waitForLine (wanted) {
  const lines = createInterface({ input: process.stdin })
  return new Promise((resolve) => lines.on('line', (line) => { if (line.trim() === wanted) { lines.close(); resolve() } }))
}

const workloads = { fanout, ingest, storm, join }
try {
  const result = await workloads[config.workload]()
  writeFileSync(config.out, JSON.stringify(result))
  say(`result ${config.out}`)
  process.exit(0)
} catch (error) {
  console.error(error)
  say(`error ${String(error && error.message)}`)
  process.exit(1)
}
