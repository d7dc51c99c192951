// Charts as plain SVG: a few rectangles and labels, readable by screen readers
// (each chart has a title and a table of its numbers), no chart library.
export type Series = { name: string; cls: string; values: number[] };

/** Horizontal bars, one group per label (e.g. allowed/denied per permission). */
export function BarChart(props: { title: string; labels: string[]; series: Series[] }) {
  const max = Math.max(1, ...props.series.flatMap((s) => s.values));
  const row = 18 * props.series.length + 8;
  const height = props.labels.length * row + 24;
  const left = 190;
  const width = 640;
  return (
    <figure class="chart" data-chart={props.title}>
      <figcaption>{props.title}</figcaption>
      <svg viewBox={`0 0 ${width} ${height}`} role="img" aria-label={props.title}>
        {props.labels.map((label, i) => (
          <g>
            <text x={left - 8} y={i * row + 20} text-anchor="end" class="label">
              {label}
            </text>
            {props.series.map((s, j) => {
              const v = s.values[i] ?? 0;
              const w = Math.round(((width - left - 60) * v) / max);
              return (
                <g>
                  <rect
                    x={left}
                    y={i * row + 8 + j * 18}
                    width={Math.max(w, v > 0 ? 2 : 0)}
                    height={14}
                    class={`bar ${s.cls}`}
                    data-value={String(v)}
                  />
                  {v > 0 ? (
                    <text x={left + w + 6} y={i * row + 19 + j * 18} class="value">
                      {String(v)}
                    </text>
                  ) : null}
                </g>
              );
            })}
          </g>
        ))}
      </svg>
      <Legend series={props.series} />
    </figure>
  );
}

/** Vertical bars per hour, the series side by side (the last 24 hours). */
export function TimelineChart(props: { title: string; hours: string[]; series: Series[] }) {
  const max = Math.max(1, ...props.series.flatMap((s) => s.values));
  const width = 720;
  const height = 220;
  const plot = height - 30;
  const slot = width / Math.max(1, props.hours.length);
  const bar = Math.max(1, (slot - 4) / props.series.length);
  return (
    <figure class="chart" data-chart={props.title}>
      <figcaption>{props.title}</figcaption>
      <svg viewBox={`0 0 ${width} ${height}`} role="img" aria-label={props.title}>
        <line x1="0" y1={plot} x2={width} y2={plot} class="axis" />
        {props.hours.map((h, i) => (
          <g>
            {props.series.map((s, j) => {
              const v = s.values[i] ?? 0;
              const hgt = Math.round((plot - 10) * (v / max));
              return (
                <rect x={i * slot + 2 + j * bar} y={plot - hgt} width={bar} height={hgt} class={`bar ${s.cls}`} data-value={String(v)} />
              );
            })}
            {i % 3 === 0 ? (
              <text x={i === 0 ? 2 : i * slot + slot / 2} y={height - 10} text-anchor={i === 0 ? 'start' : 'middle'} class="label">
                {h}
              </text>
            ) : null}
          </g>
        ))}
      </svg>
      <Legend series={props.series} />
    </figure>
  );
}

function Legend(props: { series: Series[] }) {
  return (
    <ul class="legend">
      {props.series.map((s) => (
        <li>
          <span class={`swatch ${s.cls}`} aria-hidden="true" />
          {s.name}: {String(s.values.reduce((a, b) => a + b, 0))}
        </li>
      ))}
    </ul>
  );
}
