// The comment margin's stylesheet, injected once (the app's build copies only its own CSS file).

const CSS = `
.cmt-margin { display: flex; flex-direction: column; gap: 0.6rem; font-size: 0.9rem; min-width: 0; }
.cmt-toolbar { display: flex; align-items: center; gap: 0.5rem; flex-wrap: wrap; }
.cmt-toolbar h2 { font-size: 1rem; margin: 0; }
.cmt-count { color: #555; font-size: 0.8rem; margin-right: auto; }
.cmt-sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
.cmt-margin button { font: inherit; cursor: pointer; border-radius: 6px; border: 1px solid #bbb; background: #fff; color: #1a1a1a; padding: 0.2rem 0.6rem; min-height: 2rem; }
.cmt-margin button:disabled { cursor: not-allowed; opacity: 0.55; }
.cmt-margin button:focus-visible, .cmt-thread:focus-visible, .cmt-margin summary:focus-visible { outline: 3px solid #1971c2; outline-offset: 2px; }
.cmt-margin .cmt-primary { background: #1971c2; border-color: #1971c2; color: #fff; }
.cmt-margin .cmt-link { border: none; background: none; color: #1971c2; padding: 0.1rem 0.3rem; min-height: 1.6rem; }
.cmt-list { display: flex; flex-direction: column; gap: 0.5rem; }
.cmt-thread { border: 1px solid #ddd; border-left: 4px solid #f0b400; border-radius: 8px; padding: 0.5rem 0.6rem; background: #fff; }
.cmt-thread.cmt-active { border-color: #e67700; box-shadow: 0 0 0 2px rgba(230, 119, 0, 0.25); }
.cmt-detached .cmt-thread { border-left-color: #999; }
.cmt-resolved .cmt-thread { border-left-color: #2b8a3e; opacity: 0.85; }
.cmt-thread-head { display: flex; align-items: flex-start; gap: 0.4rem; }
.cmt-quote { margin: 0 0 0.3rem; padding: 0.1rem 0.5rem; border-left: 3px solid #ccc; color: #444; font-style: italic;
  overflow: hidden; text-overflow: ellipsis; display: -webkit-box; -webkit-line-clamp: 2; -webkit-box-orient: vertical; flex: 1; }
.cmt-status { margin: 0.2rem 0; color: #666; font-size: 0.8rem; }
.cmt-comments { list-style: none; margin: 0; padding: 0; display: flex; flex-direction: column; gap: 0.45rem; }
.cmt-comment-head { display: flex; gap: 0.4rem; align-items: baseline; flex-wrap: wrap; font-size: 0.8rem; color: #555; }
.cmt-author { font-weight: 600; color: #222; display: inline-flex; align-items: center; gap: 0.25rem; }
.cmt-dot { width: 0.6rem; height: 0.6rem; border-radius: 50%; display: inline-block; }
.cmt-body { margin: 0.15rem 0; white-space: pre-wrap; overflow-wrap: anywhere; }
.cmt-deleted .cmt-body { color: #888; font-style: italic; }
.cmt-mention { color: #1971c2; font-weight: 600; }
.cmt-reactions { display: flex; gap: 0.25rem; flex-wrap: wrap; align-items: center; }
.cmt-margin .cmt-reaction { padding: 0 0.4rem; min-height: 1.7rem; border-radius: 999px; }
.cmt-margin .cmt-reaction[aria-pressed="true"] { background: #e7f1fb; border-color: #1971c2; }
.cmt-react-menu { position: relative; }
.cmt-react-menu summary { list-style: none; cursor: pointer; padding: 0 0.4rem; border: 1px dashed #bbb; border-radius: 999px; min-height: 1.7rem; line-height: 1.7rem; color: #555; }
.cmt-react-menu summary::-webkit-details-marker { display: none; }
.cmt-react-choices { position: absolute; z-index: 5; top: 2rem; left: 0; background: #fff; border: 1px solid #ccc; border-radius: 8px; padding: 0.25rem; display: flex; gap: 0.2rem; box-shadow: 0 4px 12px rgba(0,0,0,0.15); }
.cmt-margin .cmt-reaction-choice { border: none; min-height: 2rem; }
.cmt-comment-actions { display: flex; gap: 0.2rem; }
.cmt-form { display: flex; flex-direction: column; gap: 0.3rem; margin-top: 0.4rem; position: relative; }
.cmt-input { font: inherit; width: 100%; box-sizing: border-box; resize: vertical; border: 1px solid #bbb; border-radius: 6px; padding: 0.35rem; }
.cmt-input:focus { outline: 2px solid #1971c2; border-color: #1971c2; }
.cmt-form-buttons { display: flex; gap: 0.4rem; justify-content: flex-end; }
.cmt-error { color: #c92a2a; margin: 0; font-size: 0.8rem; }
.cmt-hint { color: #666; margin: 0; font-size: 0.8rem; }
.cmt-composer-slot:empty { display: none; }
.cmt-composer-slot { border: 1px solid #1971c2; border-radius: 8px; padding: 0.5rem; background: #f5f9fd; }
.cmt-detached h3 { font-size: 0.9rem; margin: 0.4rem 0 0.1rem; }
.cmt-resolved summary { cursor: pointer; font-weight: 600; padding: 0.3rem 0; }
.cmt-mention-list { list-style: none; margin: 0; padding: 0.2rem; position: absolute; top: 100%; left: 0; z-index: 6; background: #fff; border: 1px solid #ccc; border-radius: 6px; box-shadow: 0 4px 12px rgba(0,0,0,0.15); min-width: 10rem; }
.cmt-mention-list li { padding: 0.2rem 0.5rem; cursor: pointer; border-radius: 4px; }
.cmt-mention-list li[aria-selected="true"] { background: #e7f1fb; }
@media (max-width: 700px) {
  .cmt-margin { font-size: 1rem; }
  .cmt-margin button { min-height: 2.5rem; }
}
`

export function injectCommentStyles () {
  if (document.getElementById('cmt-styles')) return
  const style = document.createElement('style')
  style.id = 'cmt-styles'
  style.textContent = CSS
  document.head.append(style)
}
