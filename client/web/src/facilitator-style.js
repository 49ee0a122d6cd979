// The facilitator view's stylesheet, injected once (the app's build copies only its own CSS file).

const CSS = `
.fac { display: flex; flex-direction: column; gap: 0.6rem; padding: 0.8rem; box-sizing: border-box; max-width: 1280px; margin: 0 auto; font-size: 0.95rem; }
.fac-header { display: flex; align-items: baseline; gap: 1rem; flex-wrap: wrap; }
.fac-header h2 { margin: 0; font-size: 1.2rem; overflow-wrap: anywhere; }
.fac button { font: inherit; cursor: pointer; border-radius: 6px; border: 1px solid #bbb; background: #fff; color: #1a1a1a; padding: 0.25rem 0.7rem; min-height: 2.2rem; }
.fac button:focus-visible, .fac input:focus-visible, .fac-doc:focus-visible, .fac a:focus-visible { outline: 3px solid #1971c2; outline-offset: 2px; }
.fac button[aria-pressed="true"] { background: #e7f1fb; border-color: #1971c2; color: #0b4f8a; font-weight: 600; }
.fac .fac-primary, .fac .fac-play { background: #1971c2; border-color: #1971c2; color: #fff; }
.fac .fac-play[aria-pressed="true"] { background: #0b4f8a; color: #fff; }
.fac .fac-restore { border-color: #c92a2a; color: #c92a2a; }
.fac button:disabled { opacity: 0.55; cursor: not-allowed; }
.fac-controls { display: flex; align-items: center; gap: 0.5rem; flex-wrap: wrap; position: sticky; top: 0; background: #fff; padding: 0.4rem 0; z-index: 2; }
.fac-speeds { display: flex; gap: 0.2rem; }
.fac-scrub { display: flex; align-items: center; gap: 0.5rem; flex: 1 1 280px; min-width: 0; }
.fac-slider { flex: 1 1 auto; min-width: 0; height: 2rem; accent-color: #1971c2; }
.fac-slider-label { font-weight: 600; }
.fac-status { margin: 0; color: #333; font-variant-numeric: tabular-nums; }
.fac-notice { margin: 0; color: #1b5e20; font-weight: 600; }
.fac-error { margin: 0; color: #c92a2a; }
.fac-main { display: grid; grid-template-columns: minmax(0, 3fr) minmax(0, 2fr); gap: 1rem; align-items: start; }
.fac-doc-wrap h3, .fac-panel h3 { font-size: 1rem; margin: 0.2rem 0 0.4rem; }
.fac-doc { white-space: pre-wrap; overflow-wrap: anywhere; font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 0.9rem;
  border: 1px solid #ddd; border-radius: 8px; padding: 0.8rem; min-height: 12rem; max-height: 70vh; overflow: auto; margin: 0; background: #fcfcfc; }
.fac-caret { position: relative; display: inline-block; width: 0; height: 1.1em; vertical-align: text-bottom; border-left: 2px solid var(--fac-color, #888); margin-right: -2px; }
.fac-caret::after { content: attr(data-name); position: absolute; left: -2px; top: -1.15em; font: 10px/1.2 system-ui, sans-serif; color: #fff;
  background: var(--fac-color, #888); padding: 0 3px; border-radius: 3px 3px 3px 0; white-space: nowrap; pointer-events: none; }
.fac-people { list-style: none; padding: 0; margin: 0 0 0.5rem; display: flex; flex-wrap: wrap; gap: 0.6rem; }
.fac-people li { display: inline-flex; align-items: center; gap: 0.3rem; }
.fac-dot { width: 0.7rem; height: 0.7rem; border-radius: 50%; display: inline-block; }
.fac-side { display: flex; flex-direction: column; gap: 1rem; min-width: 0; }
.fac-panel { border: 1px solid #e3e3e3; border-radius: 8px; padding: 0.6rem; }
.fac-buttons { display: flex; gap: 0.4rem; flex-wrap: wrap; margin: 0.3rem 0; }
.fac-inline-form { display: flex; gap: 0.4rem; align-items: center; flex-wrap: wrap; margin: 0.3rem 0; }
.fac-inline-form input { font: inherit; padding: 0.3rem; border: 1px solid #bbb; border-radius: 6px; flex: 1 1 8rem; min-width: 0; }
.fac-session-list, .fac-bookmarks { list-style: none; padding: 0; margin: 0.3rem 0; display: flex; flex-direction: column; gap: 0.4rem; }
.fac-bookmarks { padding-left: 0.6rem; }
.fac .fac-link { border: none; background: none; color: #1971c2; padding: 0.1rem 0.2rem; min-height: 1.8rem; text-align: left; }
.fac-meta, .fac-hint { color: #666; font-size: 0.8rem; }
.fac-chart { margin: 0.5rem 0 0; }
.fac-chart svg { max-width: 100%; height: auto; font-family: system-ui, sans-serif; }
.fac-timeline { list-style: none; padding: 0; margin: 0; max-height: 24rem; overflow: auto; display: flex; flex-direction: column; gap: 0.2rem; font-size: 0.85rem; }
.fac-timeline time { color: #666; font-variant-numeric: tabular-nums; }
.fac-dialog { border: 1px solid #aaa; border-radius: 10px; max-width: min(28rem, 90vw); }
.fac-dialog::backdrop { background: rgba(0, 0, 0, 0.35); }
@media (max-width: 800px) {
  .fac { padding: 0.5rem; }
  .fac-main { grid-template-columns: minmax(0, 1fr); }
  .fac-scrub { flex-basis: 100%; order: 5; }
  .fac button { min-height: 2.6rem; }
}
`

export function injectFacilitatorStyles () {
  if (document.getElementById('fac-styles')) return
  const style = document.createElement('style')
  style.id = 'fac-styles'
  style.textContent = CSS
  document.head.append(style)
}
