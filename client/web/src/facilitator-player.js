// The replay engine of the facilitator view: a read-only Y.Doc at any seq, played forward in time.
//
// A seek asks the server for the document at a moment (`history/at?format=update`, checkpointed
// server side) and for the recorded frames after it (`history/frames`, in windows of WINDOW rows,
// with the presence standing when the window opens). Playing applies the logged updates
// themselves, so recorded cursor positions (Yjs relative positions) resolve in the replayed doc.
// Pacing is client-side: the recorded spacing divided by the speed, idle gaps cut to MAX_GAP.
import * as Y from 'yjs'
import { fromBase64 } from 'lib0/buffer'

export const WINDOW = 500
export const MAX_GAP = 2 // recorded seconds: longer idle gaps are skipped down to this

export class Player {
  /** `base` = `/api/documents/<name>/-`; `onChange()` after every visible change. */
  constructor ({ api, base, onChange, onError }) {
    this.api = api
    this.base = base
    this.onChange = onChange
    this.onError = onError
    this.lastSeq = 0
    this.seq = 0
    this.time = null
    this.doc = new Y.Doc()
    this.presence = new Map() // awareness client -> {author, state}
    this.frames = [] // the loaded window: frames after `seq0`
    this.windowEnd = 0 // the window covers (start, windowEnd]
    this.next = 0 // index of the next frame to apply
    this.playing = false
    this.speed = 1
    this._token = 0
    this._timer = null
  }

  get text () {
    return this.doc.getText('content').toString()
  }

  async _raw (path) {
    const headers = this.api.token ? { Authorization: `Bearer ${this.api.token}` } : {}
    const response = await fetch(path, { headers, credentials: 'same-origin' })
    if (!response.ok) {
      const error = new Error(`HTTP ${response.status} for ${path}`)
      error.status = response.status
      throw error
    }
    return new Uint8Array(await response.arrayBuffer())
  }

  async _window (after) {
    const until = Math.min(after + WINDOW, this.lastSeq)
    const view = await this.api.get(
      `${this.base}/history/frames?from_seq=${after}&to_seq=${until}&speed=1&max_gap=${MAX_GAP}`)
    return { until, frames: view.frames }
  }

  /** Show the document at `seq` (0 = empty). Later seeks win over earlier ones still loading. */
  async seek (seq) {
    const target = Math.max(0, Math.min(Math.round(seq), this.lastSeq))
    if (target >= this.seq && target <= this.windowEnd && this.frames.length) {
      this._token++ // a slower seek still loading must not land after this one
      this._applyUntil(target) // forward inside the loaded window: no request
      this.onChange()
      return
    }
    const token = ++this._token
    const base = Math.max(0, target - 1) // the frame of `target` itself gives its time
    try {
      const [update, window] = await Promise.all([
        base > 0 ? this._raw(`${this.base}/history/at?seq=${base}&format=update`) : null,
        this._window(base)
      ])
      if (token !== this._token) return
      const doc = new Y.Doc()
      if (update) Y.applyUpdate(doc, update)
      this.doc.destroy()
      this.doc = doc
      this.seq = base
      this.time = null
      this.presence.clear()
      this.frames = window.frames
      this.windowEnd = window.until
      this.next = 0
      this._applyUntil(target)
      this.onChange()
    } catch (err) {
      if (token === this._token) this.onError(err)
    }
  }

  /** Apply the loaded frames up to and including the update of `seq`. */
  _applyUntil (seq) {
    while (this.next < this.frames.length) {
      const frame = this.frames[this.next]
      if (frame.kind === 'update' && frame.seq > seq) break
      this._apply(frame)
      this.next++
    }
    if (seq > this.seq) this.seq = seq
  }

  _apply (frame) {
    if (frame.kind === 'update') {
      Y.applyUpdate(this.doc, fromBase64(frame.update))
      this.seq = frame.seq
    } else if (frame.kind === 'state') {
      if (frame.state) this.presence.set(frame.client, { author: frame.author, state: frame.state })
      else this.presence.delete(frame.client)
    } else if (frame.kind === 'leave') {
      for (const client of frame.clients ?? []) this.presence.delete(client)
    }
    if (frame.time) this.time = frame.time
  }

  /** Who is here now: [{client, name, color, from, to}] (from/to: their cursor, if it resolves). */
  people () {
    const ytext = this.doc.getText('content')
    const found = []
    for (const [client, { author, state }] of this.presence) {
      const user = state.user ?? {}
      let from = null
      let to = null
      try {
        if (state.cursor?.anchor && state.cursor?.head) {
          const anchor = Y.createAbsolutePositionFromRelativePosition(Y.createRelativePositionFromJSON(state.cursor.anchor), this.doc)
          const head = Y.createAbsolutePositionFromRelativePosition(Y.createRelativePositionFromJSON(state.cursor.head), this.doc)
          if (anchor && head && anchor.type === ytext && head.type === ytext) {
            from = Math.min(anchor.index, head.index)
            to = Math.max(anchor.index, head.index)
          }
        }
      } catch {
        // a malformed recorded cursor shows no caret
      }
      found.push({ client, name: user.name || author || `client ${client}`, color: user.color || '#888', from, to })
    }
    return found
  }

  play (speed = this.speed) {
    this.speed = speed
    if (this.playing) return
    if (this.seq >= this.lastSeq) return
    this.playing = true
    this.onChange()
    this._schedule(0)
  }

  pause () {
    this.playing = false
    clearTimeout(this._timer)
    this._timer = null
    this.onChange()
  }

  setSpeed (speed) {
    this.speed = speed
    if (this.playing) {
      clearTimeout(this._timer)
      this._schedule(0)
    }
  }

  _schedule (delay) {
    this._timer = setTimeout(() => this._step(), delay)
  }

  async _step () {
    if (!this.playing) return
    if (this.next >= this.frames.length) {
      if (this.windowEnd >= this.lastSeq) return this.pause()
      try {
        const window = await this._window(this.windowEnd)
        if (!this.playing) return
        this.frames = window.frames.filter((f) => !f.initial)
        this.windowEnd = window.until
        this.next = 0
      } catch (err) {
        this.pause()
        return this.onError(err)
      }
      return this._schedule(0)
    }
    // apply every frame due within the next few milliseconds, then wait for the following one
    let wait = 0
    while (this.next < this.frames.length && wait < 0.008) {
      this._apply(this.frames[this.next])
      this.next++
      const following = this.frames[this.next]
      const gap = following ? Math.min(Math.max(following.time - this.time, 0), MAX_GAP) : 0
      wait = gap / this.speed
    }
    this.onChange()
    this._schedule(wait * 1000)
  }

  destroy () {
    this.playing = false
    clearTimeout(this._timer)
    this._token++
    this.doc.destroy()
  }
}
