// The document's connection: y-websocket with cocreate's `?acks=1` extension, y-indexeddb for edits
// kept across reloads and offline, and a save state driven only by the server's acknowledgements.
//
// The server numbers the update-carrying messages of each connection (sync step 2 and update) 1, 2,
// 3, ... and sends `ack(count)` once 1..count are committed to its log (docs/PROTOCOL.md). We count
// what each socket sends and compare. After a reconnect, the step 2 we answer the server's step 1
// with carries everything the server lacks, so "Saved" = connected, that step 2 sent, all acked.
import * as decoding from 'lib0/decoding'
import { IndexeddbPersistence } from 'y-indexeddb'
import { WebsocketProvider } from 'y-websocket'

export const MESSAGE_ACK = 100
export const MESSAGE_REFUSED = 101
export const MESSAGE_EPOCH = 102
export const MESSAGE_EVENT = 103
const MESSAGE_SYNC = 0
const SYNC_STEP2 = 1
const SYNC_UPDATE = 2
const EPOCH_KEY = 'epoch'
const CLOSE_REASONS = {
  4401: 'Your access has expired. Sign in again to keep editing.',
  4403: 'Your access to this document was removed.',
  4404: 'This document was deleted or replaced since you opened it.',
  4413: 'This document reached its size limit.'
}

/** True when `data` (one y-websocket frame) is a sync step 2 or an update: the server numbers those. */
export function carriesUpdate (data) {
  const bytes = data instanceof Uint8Array ? data : new Uint8Array(data)
  return bytes.length >= 2 && bytes[0] === MESSAGE_SYNC && (bytes[1] === SYNC_STEP2 || bytes[1] === SYNC_UPDATE)
}

function websocketBase () {
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws'
  return `${scheme}://${location.host}/ws`
}

/**
 * Opens `docName` into `ydoc` (`readOnly`: the role cannot edit, refusals are expected). `onStatus({state, unsaved, detail})` is called on every change, where
 * state is connecting | saving | saved | offline | refused | closed (with the close `code`); `onEvent({kind, data})` for
 * document events. Returns `{provider, persistence, retry(), discardLocalCopy(), destroy()}`.
 */
export async function openDocument ({ docName, ydoc, token, readOnly = false, onStatus, onEvent }) {
  const persistence = new IndexeddbPersistence(`cocreate:${location.host}:${docName}`, ydoc)
  await persistence.whenSynced
  const epoch = await persistence.get(EPOCH_KEY).catch(() => undefined)

  let current = null // the socket in use: {sent, acked, replied}
  let unsaved = false // edits the server has not acknowledged, from a closed socket or made offline
  let refusal = ''
  let closed = null

  class CountingSocket extends WebSocket {
    constructor (url, protocols) {
      super(url, protocols)
      this.sent = 0
      this.acked = 0
      this.replied = false
      current = this
    }

    send (data) {
      if (carriesUpdate(data)) {
        this.sent += 1
        this.replied = true
      }
      super.send(data)
      report()
    }
  }

  const params = { acks: '1' }
  if (token) params.token = token
  if (typeof epoch === 'string' && epoch) params.epoch = epoch
  const room = docName.split('/').map(encodeURIComponent).join('/')
  const provider = new WebsocketProvider(websocketBase(), room, ydoc, {
    params,
    WebSocketPolyfill: CountingSocket,
    disableBc: true,
    connect: false
  })

  provider.messageHandlers[MESSAGE_ACK] = (_encoder, decoder, p) => {
    const socket = p.ws
    if (socket) socket.acked = Math.max(socket.acked, decoding.readVarUint(decoder))
    report()
  }
  provider.messageHandlers[MESSAGE_REFUSED] = (_encoder, decoder) => {
    decoding.readVarUint(decoder)
    const reason = decoding.readVarString(decoder)
    // A viewer has nothing to save: the server refuses even its empty handshake step 2.
    if (!readOnly) refusal = reason
    report()
  }
  provider.messageHandlers[MESSAGE_EPOCH] = (_encoder, decoder, p) => {
    const id = decoding.readVarString(decoder)
    p.params.epoch = id
    persistence.set(EPOCH_KEY, id).catch(() => {})
  }
  provider.messageHandlers[MESSAGE_EVENT] = (_encoder, decoder) => {
    const kind = decoding.readVarString(decoder)
    const text = decoding.readVarString(decoder)
    let data = null
    try {
      data = JSON.parse(text)
    } catch {
      data = { raw: text }
    }
    if (onEvent) onEvent({ kind, data })
  }

  function state () {
    if (closed) return { state: 'closed', unsaved, detail: closed.message, code: closed.code }
    if (refusal) return { state: 'refused', unsaved: true, detail: refusal }
    if (!provider.wsconnected || !current || provider.ws !== current) {
      return { state: provider.wsconnecting && !unsaved ? 'connecting' : 'offline', unsaved }
    }
    if (!current.replied || current.acked < current.sent) return { state: 'saving', unsaved: true }
    return { state: 'saved', unsaved: false }
  }

  let last = ''
  function report () {
    const now = state()
    if (now.state === 'saved') unsaved = false
    const key = JSON.stringify(now)
    if (key !== last) {
      last = key
      onStatus(now)
    }
  }

  ydoc.on('update', (_update, origin) => {
    if (origin !== provider && !provider.wsconnected) unsaved = true
    report()
  })
  provider.on('connection-close', () => {
    if (current && current.acked < current.sent) unsaved = true
    report()
  })
  provider.on('status', report)
  provider.on('closed', (event) => {
    const message = CLOSE_REASONS[event.code] || `The server closed the connection (${event.code} ${event.reason}).`
    closed = { code: event.code, message }
    report()
  })
  // The browser knows first when the network goes: stop at once, and reconnect when it is back
  // (y-websocket alone notices only after 30 s of silence).
  const goOffline = () => { provider.disconnect(); report() }
  const goOnline = () => { if (!closed) provider.connect() }
  window.addEventListener('offline', goOffline)
  window.addEventListener('online', goOnline)
  if (navigator.onLine !== false) provider.connect()
  report()

  return {
    provider,
    persistence,
    status: state,
    /** Forget this browser's copy (after the document was replaced: 4404) and start over. */
    async discardLocalCopy () {
      provider.destroy()
      await persistence.clearData()
    },
    destroy () {
      window.removeEventListener('offline', goOffline)
      window.removeEventListener('online', goOnline)
      provider.awareness.setLocalState(null)
      provider.destroy()
      persistence.destroy()
    }
  }
}
