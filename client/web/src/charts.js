// Plain SVG charts for the facilitator view: grouped horizontal bars, one group per participant.

const SVG = 'http://www.w3.org/2000/svg'

function svg (tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag)
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value))
  if (text !== undefined) node.textContent = text
  return node
}

/** A "nice" axis maximum (1, 2 or 5 times a power of ten) at or above `value`. */
export function niceMax (value) {
  if (!(value > 0)) return 1
  const power = 10 ** Math.floor(Math.log10(value))
  for (const step of [1, 2, 5, 10]) if (step * power >= value) return step * power
  return 10 * power
}

/**
 * Grouped horizontal bar chart.
 * `rows`: [{label, values: {key: number}}]; `series`: [{key, label, color}].
 * Returns an <svg role="img"> sized by its viewBox (it scales to its container's width); each bar
 * carries a <title> and the whole chart an aria-label summarising the numbers.
 */
export function barChart ({ title, rows, series, width = 520 }) {
  const labelWidth = Math.min(160, Math.max(70, ...rows.map((r) => r.label.length * 7 + 12)))
  const barHeight = 14
  const groupGap = 12
  const legendHeight = 22
  // legend entries flow left to right and wrap to the next line on narrow charts
  const legend = []
  let legendX = 0
  let legendY = legendHeight
  for (const s of series) {
    const itemWidth = 24 + s.label.length * 6.5
    if (legendX > 0 && legendX + itemWidth > width) {
      legendX = 0
      legendY += 16
    }
    legend.push({ s, x: legendX, y: legendY })
    legendX += itemWidth
  }
  const top = legendY + 20
  const groupHeight = series.length * barHeight + groupGap
  const height = top + Math.max(rows.length, 1) * groupHeight + 24
  const plotWidth = width - labelWidth - 50
  const max = niceMax(Math.max(0, ...rows.flatMap((r) => series.map((s) => r.values[s.key] ?? 0))))
  const scale = (value) => (value / max) * plotWidth
  const summary = rows.map((r) => `${r.label}: ${series.map((s) => `${s.label} ${r.values[s.key] ?? 0}`).join(', ')}`)
  const root = svg('svg', {
    viewBox: `0 0 ${width} ${height}`,
    width: '100%',
    role: 'img',
    class: 'chart',
    'aria-label': `${title}. ${summary.join('; ') || 'no data'}`,
    preserveAspectRatio: 'xMinYMin meet'
  })
  root.append(svg('title', {}, title))
  root.append(svg('text', { x: 0, y: 14, class: 'chart-title', 'font-size': 13, 'font-weight': 600 }, title))
  for (const { s, x, y } of legend) {
    root.append(svg('rect', { x, y, width: 10, height: 10, fill: s.color, rx: 2 }))
    root.append(svg('text', { x: x + 14, y: y + 9, 'font-size': 11 }, s.label))
  }
  const axisY = top + rows.length * groupHeight
  for (let i = 0; i <= 4; i++) {
    const x = labelWidth + (plotWidth * i) / 4
    root.append(svg('line', { x1: x, x2: x, y1: top - 4, y2: axisY, stroke: '#e3e3e3' }))
    root.append(svg('text', { x, y: axisY + 14, 'font-size': 10, 'text-anchor': 'middle', fill: '#666' }, String((max * i) / 4)))
  }
  rows.forEach((row, index) => {
    const y = top + index * groupHeight
    const group = svg('g', { class: 'chart-row', 'data-label': row.label })
    group.append(svg('text', {
      x: labelWidth - 8, y: y + (series.length * barHeight) / 2 + 4, 'font-size': 12, 'text-anchor': 'end'
    }, row.label))
    series.forEach((s, k) => {
      const value = row.values[s.key] ?? 0
      const bar = svg('rect', {
        x: labelWidth, y: y + k * barHeight, width: Math.max(scale(value), value > 0 ? 1 : 0), height: barHeight - 2,
        fill: s.color, class: 'chart-bar', 'data-series': s.key, 'data-value': value, rx: 2
      })
      bar.append(svg('title', {}, `${row.label}: ${s.label} ${value}`))
      group.append(bar)
      group.append(svg('text', {
        x: labelWidth + scale(value) + 4, y: y + k * barHeight + barHeight - 4, 'font-size': 10, fill: '#444'
      }, String(value)))
    })
    root.append(group)
  })
  if (!rows.length) {
    root.append(svg('text', { x: labelWidth, y: top + 12, 'font-size': 12, fill: '#666' }, 'No contributions in this window'))
  }
  return root
}

export const CONTRIBUTION_SERIES = [
  { key: 'written', label: 'chars inserted', color: '#1971c2' },
  { key: 'deleted', label: 'chars deleted', color: '#e8590c' },
  { key: 'comments', label: 'comments + replies', color: '#2b8a3e' }
]

/** A summary's participants (server `history/summary` / session summary) as chart rows. */
export function contributionRows (participants, nameOf = (id) => id) {
  return participants.map((p) => ({
    label: nameOf(p.author),
    values: {
      written: p.written,
      deleted: p.deleted_own + p.deleted_others,
      comments: p.comments + p.replies
    }
  }))
}
